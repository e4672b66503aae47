/**
 * Per-domain quotas with C xenstored's defaults (tools/xenstored/domain.c hard_quotas[]). Privileged
 * connections (dom0, priv_domid) are exempt from all of them, as domain_is_unprivileged() makes them.
 */
import { XENSTORE_REL_PATH_MAX } from '../../drivers/xenbus/xs-wire.js';

export interface XsQuotas {
  /** Nodes owned by one domain ("nodes"). */
  nodes: number;
  /** Watches per domain ("watches"). */
  watches: number;
  /** Replies not yet taken by the transport before the daemon stops reading ("outstanding"). */
  outstanding: number;
  /** Concurrent transactions per domain ("transactions"). */
  transactions: number;
  /** Nodes one transaction may access ("transaction-nodes"). */
  transactionNodes: number;
  /** Permission entries per node ("node-permissions"). */
  nodePermissions: number;
  /** Path length without the "/local/domain/<id>/" prefix ("path-max"). */
  pathMax: number;
  /** Header + perms + value + child names of one node ("node-size"). */
  nodeSize: number;
}

export const DEFAULT_QUOTAS: Readonly<XsQuotas> = Object.freeze({
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  transactions: 10,
  transactionNodes: 1024,
  nodePermissions: 5,
  pathMax: XENSTORE_REL_PATH_MAX,
  nodeSize: 2048,
});
