/**
 * "Did you mean ...?" for misspelt keys, step kinds, domain and image names.
 *
 * A candidate is suggested when its optimal-string-alignment distance (Damerau-Levenshtein where a
 * transposition counts as one edit) to the input is at most 2 and less than half the longer word, or
 * when one word is a prefix of the other (at least 2 characters). Comparison ignores case.
 */

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        d[(i - 1) * cols + j] + 1,
        d[i * cols + j - 1] + 1,
        d[(i - 1) * cols + j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[(i - 2) * cols + j - 2] + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1];
}

/** The closest candidate, or undefined when none is close enough. Ties go to the earlier candidate. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const word = input.toLowerCase();
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    if (other === word) return candidate;
    const distance = editDistance(word, other);
    const longer = Math.max(word.length, other.length);
    let score = Number.POSITIVE_INFINITY;
    if (distance <= 2 && distance < longer / 2) score = distance;
    else if (Math.min(word.length, other.length) >= 2 && (other.startsWith(word) || word.startsWith(other))) {
      // A prefix match ranks after any close spelling.
      score = 3;
    }
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}

/** `; did you mean "x"?` when something is close, else `; expected one of: a, b, c` (empty list: ""). */
export function fixHint(input: string, candidates: readonly string[]): string {
  const close = suggest(input, candidates);
  if (close !== undefined) return `; did you mean "${close}"?`;
  if (candidates.length === 0) return '';
  return `; expected one of: ${candidates.join(', ')}`;
}
