/**
 * glob(3) matching of one path component: `*`, `?` and bracket sets (`[0-9]`, `[!a]`), as tap-ctl uses
 * for `/sys/class/blktap2/blktap*` and `/var/run/blktap-control/ctl*`. Like glob(3), a leading `.` is
 * only matched by a pattern that starts with `.`.
 */

/** Compiles one component pattern; throws on an unterminated bracket so a bad pattern is never silent. */
export function compileComponentGlob(pattern: string): (name: string) => boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) throw new SyntaxError(`glob: unterminated "[" at offset ${i} in pattern "${pattern}"`);
      let body = pattern.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      source += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else if (c === '\\' && i + 1 < pattern.length) {
      source += escapeRegExp(pattern[++i]!);
    } else source += escapeRegExp(c);
  }
  const re = new RegExp(`${source}$`);
  const dotExplicit = pattern.startsWith('.');
  return (name) => (dotExplicit || !name.startsWith('.')) && re.test(name);
}

export function hasGlobMagic(component: string): boolean {
  return /[*?[]/.test(component);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
}
