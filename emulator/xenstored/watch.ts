/**
 * One registered watch (tools/xenstored/watch.c). `node` is the canonical path; `prefixLength` strips
 * "/local/domain/<id>/" again from event paths when the watcher gave a relative path, so events are
 * spelled the way the watcher spelled the watch.
 */
import { isChildOrSelf } from './paths.js';

export interface XsWatch {
  readonly node: string;
  readonly token: string;
  readonly prefixLength: number;
}

/** Does an event on `name` (exact: only a watch set on that very path) reach this watch? */
export function watchMatches(w: XsWatch, name: string, exact: boolean): boolean {
  return exact ? w.node === name : isChildOrSelf(name, w.node);
}

export function watchEventPath(w: XsWatch, name: string): string {
  return name.slice(w.prefixLength);
}
