// Python spellings for extraRepr(), so toString() reads like PyTorch's repr.

/** A float as Python's repr writes it: 1.0, 0.1, 1e-05. */
export function pyFloat(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.0`;
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e16)) return v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(v);
}

/** A tuple of ints: (3, 3), or (6,) for one element. */
export const pyTuple = (v: readonly number[]): string => (v.length === 1 ? `(${v[0]},)` : `(${v.join(', ')})`);

/** A bool: True / False. */
export const pyBool = (v: boolean): string => (v ? 'True' : 'False');
