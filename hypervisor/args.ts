/**
 * Checks that a hypercall argument is representable in its C field. A value that is not (a
 * negative ref, a domid above 0xffff, a string) could never reach Xen from a real guest, so it is a
 * caller bug: it throws a RangeError naming the field and value and nothing is changed.
 */
export function checkUint(value: unknown, bits: 8 | 16 | 32, field: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${field} must be an integer in 0..${max} (u${bits}), got ${String(value)}`);
  }
  return value;
}

/** Addresses are u64 in C; numbers up to 2^53 are enough for 4 KiB frames of a simulated host. */
export function checkAddr(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${field} must be a non-negative safe integer address, got ${String(value)}`);
  }
  return value;
}

/** The name of field `field` of hypercall op `index` in an error ("ops[3].ref"). */
export function opField(index: number, field: string): string {
  return `ops[${index}].${field}`;
}

/** checkUint of a field of op `index`: the field's name is built only when the check fails. */
export function checkOpUint(value: unknown, bits: 8 | 16 | 32, index: number, field: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max) return value;
  return checkUint(value, bits, opField(index, field));
}

/** checkAddr of a field of op `index`: the field's name is built only when the check fails. */
export function checkOpAddr(value: unknown, index: number, field: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  return checkAddr(value, opField(index, field));
}
