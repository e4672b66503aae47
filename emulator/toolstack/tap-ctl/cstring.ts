/** C string handling the tool relies on: argv strings end at the first NUL; strncpy/snprintf cut bytes. */

/** The C string a JS string stands for: everything before the first NUL. */
export function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

/** The longest prefix of `s` whose UTF-8 encoding fits in `bytes` bytes (strncpy/snprintf truncation). */
export function truncateUtf8(s: string, bytes: number): string {
  const enc = new TextEncoder();
  if (enc.encode(s).length <= bytes) return s;
  let out = '';
  for (const ch of s) {
    if (enc.encode(out + ch).length > bytes) break;
    out += ch;
  }
  return out;
}
