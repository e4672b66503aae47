import { describe, expect, it } from 'vitest';
import { nulStrings, XsType } from '../../drivers/xenbus/xs-wire.js';
import { describeStep, ProtocolRig, type Step } from './harness.js';

/** Run a table in order; every row checks the reply and (when given) the events of every actor. */
function runTable(steps: Step[], rig = new ProtocolRig()): ProtocolRig {
  steps.forEach((s, i) => {
    const { reply, events } = rig.run(s);
    expect(reply, describeStep(s, i)).toBe(s.expect);
    if (s.events) expect(events, `${describeStep(s, i)} events`).toEqual(s.events);
  });
  return rig;
}

const guestHome: Step[] = [
  { as: 'd0', op: 'MKDIR', args: ['/local/domain/5'], expect: 'OK|' },
  { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5', 'n5'], expect: 'OK|' },
  { as: 'd0', op: 'MKDIR', args: ['/local/domain/6'], expect: 'OK|' },
  { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/6', 'n6'], expect: 'OK|' },
];

describe('xenstored protocol: permissions', () => {
  it('guests are confined to what their perms allow; only the owner sets perms; only dom0 changes owner', () => {
    runTable([
      ...guestHome,
      { as: 'g5', op: 'WRITE', args: ['/local/domain/0/x', '1'], expect: 'EACCES' },
      { as: 'g5', op: 'WRITE', args: ['/local/domain/6/x', '1'], expect: 'EACCES' },
      { as: 'g5', op: 'WRITE', args: ['data/x', 'v'], expect: 'OK|' },
      { as: 'g5', op: 'READ', args: ['/local/domain/5/data/x'], expect: 'v' },
      { as: 'g5', op: 'GET_PERMS', args: ['data/x'], expect: 'n5|' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/data/x'], expect: 'EACCES' },
      // Missing node: ENOENT when the nearest ancestor grants the access, EACCES otherwise (masking).
      { as: 'g5', op: 'READ', args: ['data/none'], expect: 'ENOENT' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/data/none'], expect: 'EACCES' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/a/b/c'], expect: 'EACCES' },
      { as: 'g5', op: 'READ', args: ['/nowhere'], expect: 'EACCES' },
      { as: 'd0', op: 'READ', args: ['/nowhere'], expect: 'ENOENT' },
      // Grant g6 read on one node: it can read that node but nothing else.
      { as: 'g5', op: 'SET_PERMS', args: ['data/x', 'n5', 'r6'], expect: 'OK|' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/data/x'], expect: 'v' },
      { as: 'g6', op: 'WRITE', args: ['/local/domain/5/data/x', 'w'], expect: 'EACCES' },
      { as: 'g6', op: 'SET_PERMS', args: ['/local/domain/5/data/x', 'b6'], expect: 'EACCES' },
      // The owner may not hand the node to someone else; dom0 may.
      { as: 'g5', op: 'SET_PERMS', args: ['data/x', 'n6'], expect: 'EPERM' },
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5/data/x', 'n6'], expect: 'OK|' },
      { as: 'g5', op: 'READ', args: ['data/x'], expect: 'EACCES' },
      { as: 'g6', op: 'WRITE', args: ['/local/domain/5/data/x', 'w'], expect: 'OK|' },
      // Default letter of the owner entry applies to unlisted domains.
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5/data/x', 'r0'], expect: 'OK|' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/data/x'], expect: 'w' },
      { as: 'g6', op: 'WRITE', args: ['/local/domain/5/data/x', 'z'], expect: 'EACCES' },
      // Malformed permission strings.
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5', 'x5'], expect: 'EINVAL' },
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5', 'r'], expect: 'EINVAL' },
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5'], expect: 'EINVAL' },
      { as: 'd0', op: 'GET_PERMS', args: ['@introduceDomain'], expect: 'n0|' },
    ]);
  });

  it('implicit parents copy the parent perms; an unprivileged creator owns what it creates', () => {
    runTable([
      ...guestHome,
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5', 'n5', 'r6'], expect: 'OK|' },
      { as: 'g5', op: 'WRITE', args: ['a/b/c', 'x'], expect: 'OK|' },
      { as: 'g5', op: 'READ', args: ['a/b'], expect: '' },
      { as: 'g5', op: 'GET_PERMS', args: ['a/b'], expect: 'n5|r6|' },
      { as: 'g6', op: 'READ', args: ['/local/domain/5/a/b/c'], expect: 'x' },
      { as: 'd0', op: 'WRITE', args: ['/tool/p/q', '1'], expect: 'OK|' },
      { as: 'd0', op: 'GET_PERMS', args: ['/tool/p'], expect: 'n0|' },
      { as: 'd0', op: 'DIRECTORY', args: ['/local/domain/5/a'], expect: 'b|' },
      // MKDIR of an existing node leaves it alone.
      { as: 'g5', op: 'MKDIR', args: ['a/b/c'], expect: 'OK|' },
      { as: 'g5', op: 'READ', args: ['a/b/c'], expect: 'x' },
    ]);
  });

  it('rm removes whole subtrees; absent node with a parent is OK; absent parent is ENOENT; "/" is EINVAL', () => {
    runTable([
      { as: 'd0', op: 'WRITE', args: ['/r/a/b', '1'], expect: 'OK|' },
      { as: 'd0', op: 'WRITE', args: ['/r/a/c', '2'], expect: 'OK|' },
      { as: 'd0', op: 'RM', args: ['/r/a'], expect: 'OK|' },
      { as: 'd0', op: 'READ', args: ['/r/a/b'], expect: 'ENOENT' },
      { as: 'd0', op: 'DIRECTORY', args: ['/r'], expect: '' },
      { as: 'd0', op: 'RM', args: ['/r/a'], expect: 'OK|' },
      { as: 'd0', op: 'RM', args: ['/r/a/b'], expect: 'ENOENT' },
      { as: 'd0', op: 'RM', args: ['/'], expect: 'EINVAL' },
      { as: 'g5', op: 'RM', args: ['/r'], expect: 'EACCES' },
    ]);
  });
});

describe('xenstored protocol: watches', () => {
  it('fire at registration, on the path and descendants, spelled as the watcher spelled them', () => {
    runTable([
      ...guestHome,
      { as: 'g5', op: 'WATCH', args: ['device', 'rel'], expect: 'OK|', events: { g5: ['device|rel'] } },
      {
        as: 'd0',
        op: 'WATCH',
        args: ['/local/domain/5/device', 'abs'],
        expect: 'OK|',
        events: { d0: ['/local/domain/5/device|abs'] },
      },
      { as: 'd0', op: 'WATCH', args: ['/local/domain/5/device', 'abs'], expect: 'EEXIST' },
      {
        as: 'd0',
        op: 'WRITE',
        args: ['/local/domain/5/device/vbd/51712/state', '1'],
        expect: 'OK|',
        events: { g5: ['device/vbd/51712/state|rel'], d0: ['/local/domain/5/device/vbd/51712/state|abs'] },
      },
      // A sibling path does not match.
      { as: 'd0', op: 'WRITE', args: ['/local/domain/5/devices', '1'], expect: 'OK|', events: {} },
      { as: 'd0', op: 'UNWATCH', args: ['/local/domain/5/device', 'abs'], expect: 'OK|' },
      { as: 'd0', op: 'UNWATCH', args: ['/local/domain/5/device', 'abs'], expect: 'ENOENT' },
      { as: 'g5', op: 'WRITE', args: ['device/x', '1'], expect: 'OK|', events: { g5: ['device/x|rel'] } },
    ]);
  });

  it('a token with bytes above 0x7f is acknowledged and the connection keeps working', () => {
    // Regression: queueing its registration event used to throw a RangeError out of the daemon.
    const rig = runTable([
      ...guestHome,
      {
        as: 'g5',
        op: 'WATCH',
        raw: new Uint8Array([...nulStrings('device'), 0xff, 0x80, 0]),
        expect: 'OK|',
        // The token comes back byte for byte (the harness shows one char per byte).
        events: { g5: ['device|\xff\x80'] },
      },
      {
        as: 'g5',
        op: 'WRITE',
        args: ['device/x', '1'],
        expect: 'OK|',
        events: { g5: ['device/x|\xff\x80'] },
      },
    ]);
    expect(rig.conns.get('g5')!.closed).toBe(false);
  });

  it('an event longer than XENSTORE_PAYLOAD_MAX is not sent (add_event); the daemon keeps serving', () => {
    const token = 't'.repeat(4000);
    const long = `/a/${'n'.repeat(200)}`;
    runTable([
      { as: 'd0', op: 'WATCH', args: ['/a', token], expect: 'OK|', events: { d0: [`/a|${token}`] } },
      // "/a/nnn...\0" + token + "\0" is 4205 bytes: dropped, the write itself succeeds.
      { as: 'd0', op: 'WRITE', args: [long, '1'], expect: 'OK|', events: {} },
      { as: 'd0', op: 'WRITE', args: ['/a/b', '1'], expect: 'OK|', events: { d0: [`/a/b|${token}`] } },
    ]);
  });

  it('removal fires the removed root for ancestors and exact watches on removed descendants', () => {
    runTable([
      { as: 'd0', op: 'WRITE', args: ['/t/a/b/c', '1'], expect: 'OK|' },
      { as: 'd0', op: 'WATCH', args: ['/t', 'anc'], expect: 'OK|' },
      { as: 'd0', op: 'WATCH', args: ['/t/a/b/c', 'leaf'], expect: 'OK|' },
      { as: 'd0', op: 'WATCH', args: ['/t/a/b/zz', 'never'], expect: 'OK|' },
      { as: 'd0', op: 'RM', args: ['/t/a'], expect: 'OK|', events: { d0: ['/t/a/b/c|leaf', '/t/a|anc'] } },
    ]);
  });

  it('special watches: @introduceDomain and @releaseDomain reach privileged watchers only', () => {
    const rig = runTable([
      {
        as: 'd0',
        op: 'WATCH',
        args: ['@introduceDomain', 'i'],
        expect: 'OK|',
        events: { d0: ['@introduceDomain|i'] },
      },
      { as: 'd0', op: 'WATCH', args: ['@releaseDomain', 'r'], expect: 'OK|' },
      {
        as: 'g6',
        op: 'WATCH',
        args: ['@introduceDomain', 'g'],
        expect: 'OK|',
        events: { g6: ['@introduceDomain|g'] },
      },
      {
        as: 'd0',
        op: 'INTRODUCE',
        args: ['7', '1234', '3'],
        expect: 'OK|',
        events: { d0: ['@introduceDomain|i'] },
      },
      // Same page again: accepted (the event channel is rebound), no second @introduceDomain.
      { as: 'd0', op: 'INTRODUCE', args: ['7', '1234', '4'], expect: 'OK|', events: {} },
      // Another page for a known domain: EINVAL, as do_introduce.
      { as: 'd0', op: 'INTRODUCE', args: ['7', '999', '4'], expect: 'EINVAL', events: {} },
      { as: 'd0', op: 'IS_DOMAIN_INTRODUCED', args: ['7'], expect: 'T|' },
      { as: 'd0', op: 'IS_DOMAIN_INTRODUCED', args: ['8'], expect: 'F|' },
      { as: 'g5', op: 'IS_DOMAIN_INTRODUCED', args: ['7'], expect: 'EACCES' },
      { as: 'g5', op: 'INTRODUCE', args: ['9', '1', '1'], expect: 'EACCES' },
      { as: 'd0', op: 'INTRODUCE', args: ['9', '1', '0'], expect: 'EINVAL' },
      { as: 'd0', op: 'RELEASE', args: ['7'], expect: 'OK|', events: { d0: ['@releaseDomain|r'] } },
      { as: 'd0', op: 'RELEASE', args: ['7'], expect: 'ENOENT' },
      { as: 'd0', op: 'RELEASE', args: ['0'], expect: 'EINVAL' },
      { as: 'g5', op: 'GET_DOMAIN_PATH', args: ['7'], expect: '/local/domain/7|' },
    ]);
    expect(rig.xs.isDomainIntroduced(7)).toBe(false);
  });

  it('release removes the nodes the domain owns and closes its connections', () => {
    const rig = runTable([
      ...guestHome,
      { as: 'd0', op: 'INTRODUCE', args: ['5', '1', '1'], expect: 'OK|' },
      { as: 'g5', op: 'WRITE', args: ['data/mine', '1'], expect: 'OK|' },
      { as: 'd0', op: 'WRITE', args: ['/local/domain/5/name', 'guest'], expect: 'OK|' },
      { as: 'd0', op: 'RELEASE', args: ['5'], expect: 'OK|' },
      { as: 'd0', op: 'READ', args: ['/local/domain/5'], expect: 'ENOENT' },
    ]);
    expect(rig.conns.get('g5')!.closed).toBe(true);
    expect(rig.xs.nodesOwnedBy(5)).toBe(0);
    rig.xs.checkStore();
  });
});

describe('xenstored protocol: transactions', () => {
  it('isolation, abort, EAGAIN, watches only on commit, ids from 1', () => {
    runTable([
      { as: 'd0', op: 'WRITE', args: ['/k/a', 'old'], expect: 'OK|' },
      { as: 'd0', op: 'WATCH', args: ['/k', 'w'], expect: 'OK|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '1|' },
      { as: 'd0', tx: 1, op: 'WRITE', args: ['/k/a', 'new'], expect: 'OK|', events: {} },
      { as: 'd0', tx: 1, op: 'READ', args: ['/k/a'], expect: 'new' },
      { as: 'd0', op: 'READ', args: ['/k/a'], expect: 'old' },
      { as: 'd0', tx: 1, op: 'TRANSACTION_END', args: ['T'], expect: 'OK|', events: { d0: ['/k/a|w'] } },
      { as: 'd0', op: 'READ', args: ['/k/a'], expect: 'new' },
      // Abort leaves nothing.
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '2|' },
      { as: 'd0', tx: 2, op: 'WRITE', args: ['/k/b', 'x'], expect: 'OK|' },
      { as: 'd0', tx: 2, op: 'TRANSACTION_END', args: ['F'], expect: 'OK|', events: {} },
      { as: 'd0', op: 'READ', args: ['/k/b'], expect: 'ENOENT' },
      { as: 'd0', tx: 2, op: 'READ', args: ['/k/a'], expect: 'ENOENT' },
      // Snapshot: a later outside write is invisible, and makes the commit fail.
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '3|' },
      { as: 'd0', tx: 3, op: 'READ', args: ['/k/a'], expect: 'new' },
      { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: '1|' },
      { as: 'd0', op: 'WRITE', args: ['/k/a', 'outside'], expect: 'OK|' },
      { as: 'd0', tx: 3, op: 'READ', args: ['/k/a'], expect: 'new' },
      { as: 'd0', tx: 3, op: 'WRITE', args: ['/k/c', '1'], expect: 'OK|' },
      { as: 'd0', tx: 3, op: 'TRANSACTION_END', args: ['T'], expect: 'EAGAIN', events: {} },
      { as: 'd0', op: 'READ', args: ['/k/c'], expect: 'ENOENT' },
      { as: 'd0', tx: 3, op: 'READ', args: ['/k/a'], expect: 'ENOENT' },
      // Protocol errors.
      { as: 'd0', tx: 99, op: 'READ', args: ['/k/a'], expect: 'ENOENT' },
      { as: 'g5', tx: 1, op: 'TRANSACTION_START', args: [''], expect: 'EBUSY' },
      { as: 'g5', tx: 1, op: 'TRANSACTION_END', args: ['X'], expect: 'EINVAL' },
      { as: 'g5', tx: 1, op: 'TRANSACTION_END', args: ['T'], expect: 'OK|' },
      { as: 'g5', op: 'TRANSACTION_END', args: ['T'], expect: 'ENOENT' },
      // WATCH ignores the transaction id.
      { as: 'g5', tx: 77, op: 'WATCH', args: ['x', 't'], expect: 'OK|' },
    ]);
  });

  it('two transactions creating siblings conflict (the parent child list changed), as in C xenstored', () => {
    runTable([
      { as: 'd0', op: 'MKDIR', args: ['/p'], expect: 'OK|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '1|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '2|' },
      { as: 'd0', tx: 1, op: 'WRITE', args: ['/p/a', '1'], expect: 'OK|' },
      { as: 'd0', tx: 2, op: 'WRITE', args: ['/p/b', '1'], expect: 'OK|' },
      { as: 'd0', tx: 1, op: 'TRANSACTION_END', args: ['T'], expect: 'OK|' },
      { as: 'd0', tx: 2, op: 'TRANSACTION_END', args: ['T'], expect: 'EAGAIN' },
      { as: 'd0', op: 'DIRECTORY', args: ['/p'], expect: 'a|' },
    ]);
  });
});

describe('xenstored protocol: quotas (C xenstored defaults, dom0 exempt)', () => {
  it('node count, node size, perms per node, path length', () => {
    const rig = runTable([...guestHome], new ProtocolRig({ quotas: { nodes: 4 } }));
    runTable(
      [
        // g5 owns its home already (SET_PERMS n5), so three more nodes fill the quota of four.
        { as: 'g5', op: 'WRITE', args: ['a', '1'], expect: 'OK|' },
        { as: 'g5', op: 'WRITE', args: ['b/c', '1'], expect: 'OK|' },
        { as: 'g5', op: 'WRITE', args: ['d', '1'], expect: 'ENOSPC' },
        { as: 'g5', op: 'WRITE', args: ['a', '2'], expect: 'OK|' },
        { as: 'g5', op: 'RM', args: ['b'], expect: 'OK|' },
        { as: 'g5', op: 'WRITE', args: ['d', '1'], expect: 'OK|' },
        { as: 'd0', op: 'WRITE', args: ['/local/domain/5/dom0-made/x/y/z', '1'], expect: 'OK|' },
        // 16-byte header + 8 per perm + value + child names <= 2048.
        { as: 'g5', op: 'WRITE', args: ['a', 'x'.repeat(2048 - 16 - 8)], expect: 'OK|' },
        { as: 'g5', op: 'WRITE', args: ['a', 'x'.repeat(2048 - 16 - 8 + 1)], expect: 'ENOSPC' },
        { as: 'd0', op: 'WRITE', args: ['/local/domain/5/a', 'x'.repeat(3000)], expect: 'OK|' },
        { as: 'g5', op: 'SET_PERMS', args: ['d', 'n5', 'r1', 'r2', 'r3', 'r4'], expect: 'OK|' },
        { as: 'g5', op: 'SET_PERMS', args: ['d', 'n5', 'r1', 'r2', 'r3', 'r4', 'r6'], expect: 'ENOSPC' },
        {
          as: 'd0',
          op: 'SET_PERMS',
          args: ['/local/domain/5/d', 'n5', 'r1', 'r2', 'r3', 'r4', 'r6'],
          expect: 'OK|',
        },
        { as: 'g5', op: 'READ', args: [`d/${'p'.repeat(2047)}`], expect: 'EINVAL' },
        { as: 'g5', op: 'READ', args: [`d/${'p'.repeat(2046)}`], expect: 'ENOENT' },
        { as: 'd0', op: 'READ', args: [`/x/${'p'.repeat(2100)}`], expect: 'ENOENT' },
      ],
      rig,
    );
  });

  it('watches (C accepts one beyond the quota, then E2BIG) and transactions (ENOSPC)', () => {
    const rig = runTable([], new ProtocolRig({ quotas: { watches: 2, transactions: 2 } }));
    runTable(
      [
        { as: 'g5', op: 'WATCH', args: ['a', '1'], expect: 'OK|' },
        { as: 'g5', op: 'WATCH', args: ['a', '2'], expect: 'OK|' },
        { as: 'g5', op: 'WATCH', args: ['a', '3'], expect: 'OK|' },
        { as: 'g5', op: 'WATCH', args: ['a', '4'], expect: 'E2BIG' },
        { as: 'd0', op: 'WATCH', args: ['a', '4'], expect: 'OK|' },
        { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: '1|' },
        { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: '2|' },
        { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: '3|' },
        { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: 'ENOSPC' },
        { as: 'g5', op: 'RESET_WATCHES', args: [''], expect: 'OK|' },
        { as: 'g5', op: 'WATCH', args: ['a', '4'], expect: 'OK|' },
        { as: 'g5', op: 'TRANSACTION_START', args: [''], expect: '4|' },
      ],
      rig,
    );
  });

  it('outstanding replies: an unprivileged connection is not read from until its transport drains', () => {
    const rig = new ProtocolRig({ quotas: { outstanding: 2 } }, ['d0']);
    const delivered: Uint8Array[] = [];
    let open = false;
    const g = rig.xs.connect({
      domid: 5,
      send: (m) => {
        if (!open) return false;
        delivered.push(m);
        return true;
      },
    });
    const one = new Uint8Array([...header(XsType.GET_DOMAIN_PATH, 2), ...nulStrings('5')]);
    for (let i = 0; i < 5; i++) g.receive(one);
    expect(g.outstanding).toBe(2);
    expect(g.pendingRequests).toBe(3);
    open = true;
    g.outputReady();
    expect(delivered.length).toBe(5);
    expect(g.pendingRequests).toBe(0);
  });
});

function header(type: number, len: number, reqId = 0, txId = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, reqId, true);
  dv.setUint32(8, txId, true);
  dv.setUint32(12, len, true);
  return b;
}

describe('xenstored protocol: malformed input', () => {
  it('answers C xenstored errors for bad payloads and types', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    runTable([
      { as: 'd0', op: 'READ', raw: enc('/a'), expect: 'EINVAL' },
      { as: 'd0', op: 'READ', raw: enc('/a\0/b\0'), expect: 'EINVAL' },
      { as: 'd0', op: 'READ', raw: new Uint8Array(0), expect: 'EINVAL' },
      { as: 'd0', op: 'WRITE', raw: enc('/a'), expect: 'EINVAL' },
      { as: 'd0', op: 'WRITE', raw: enc('/a\0bin\0ary'), expect: 'OK|' },
      { as: 'd0', op: 'READ', args: ['/a'], expect: 'bin|ary' },
      { as: 'd0', op: 'READ', args: ['/a/'], expect: 'EINVAL' },
      { as: 'd0', op: 'READ', args: ['/a//b'], expect: 'EINVAL' },
      { as: 'd0', op: 'READ', args: ['/a b'], expect: 'EINVAL' },
      { as: 'd0', op: 'READ', args: ['@introduceDomain'], expect: 'EINVAL' },
      { as: 'd0', op: 'READ', args: [''], expect: 'EINVAL' },
      { as: 'd0', op: 'WATCH', args: ['/a'], expect: 'EINVAL' },
      { as: 'd0', op: 'WATCH', args: ['/a', 't', '1'], expect: 'EINVAL' },
      { as: 'd0', op: 'DIRECTORY_PART', args: ['/a'], expect: 'EINVAL' },
      { as: 'd0', op: 99, args: ['/a'], expect: 'ENOSYS' },
      { as: 'd0', op: 20, args: ['/a'], expect: 'ENOSYS' },
      { as: 'd0', op: 'ERROR', args: ['/a'], expect: 'ENOSYS' },
      { as: 'd0', op: 'WATCH_EVENT', args: ['/a', 't'], expect: 'ENOSYS' },
      { as: 'd0', op: 'GET_FEATURE', args: ['0'], expect: 'ENOSYS' },
      { as: 'g5', op: 'CONTROL', args: ['print', 'x'], expect: 'EACCES' },
      { as: 'd0', op: 'CONTROL', args: ['print', 'x'], expect: 'OK|' },
      { as: 'd0', op: 'CONTROL', args: ['bogus'], expect: 'EINVAL' },
    ]);
  });

  it('an oversize header closes that connection only; others keep working', () => {
    const rig = new ProtocolRig();
    const g5 = rig.conns.get('g5')!;
    g5.receive(header(XsType.WRITE, 4097));
    expect(g5.closed).toBe(true);
    expect(rig.run({ as: 'd0', op: 'WRITE', args: ['/ok', '1'], expect: '' }).reply).toBe('OK|');
  });

  it('DIRECTORY too big for one reply is E2BIG; DIRECTORY_PART pages through it', () => {
    const rig = new ProtocolRig();
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      names.push(`child-number-${String(i).padStart(4, '0')}`);
      rig.run({ as: 'd0', op: 'MKDIR', args: [`/big/${names[i]}`], expect: '' });
    }
    expect(rig.run({ as: 'd0', op: 'DIRECTORY', args: ['/big'], expect: '' }).reply).toBe('E2BIG');
    const got: string[] = [];
    let off = 0;
    for (;;) {
      const r = rig.run({ as: 'd0', op: 'DIRECTORY_PART', args: ['/big', String(off)], expect: '' }).reply;
      const parts = r.split('|');
      const gen = parts.shift();
      expect(Number(gen)).toBeGreaterThan(0);
      const chunk = parts.filter((p) => p !== '');
      got.push(...chunk);
      if (r.endsWith('||')) break;
      off += chunk.reduce((n, c) => n + c.length + 1, 0);
    }
    expect(got).toEqual(names);
  });
});
