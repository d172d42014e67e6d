// Shape arithmetic shared by the facade (which infers every output shape
// synchronously, so errors throw at the user's line) and the worker.

export type Shape = readonly number[];
export type DType = 'float32' | 'int32';

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export const fmt = (s: Shape) => `[${s.join(', ')}]`;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting of two shapes; throws naming both. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast (dim ${i - n}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalizes a possibly negative dim against a rank; throws if out of range. */
export function normDim(dim: number, rank: number, op: string, shape?: Shape): number {
  const d = dim < 0 ? dim + rank : dim;
  if (!Number.isInteger(dim) || d < 0 || d >= Math.max(rank, 1) || (rank === 0 && d !== 0)) {
    throw new ShapeError(`${op}: dim ${dim} is out of range for ${shape ? `shape ${fmt(shape)}` : `rank ${rank}`}`);
  }
  return d;
}

/** Resolves a reshape target with at most one -1. */
export function resolveReshape(from: Shape, to: Shape): number[] {
  const size = sizeOf(from);
  const free = to.filter((d) => d === -1).length;
  if (free > 1) throw new ShapeError(`reshape: only one dimension may be -1, got ${fmt(to)}`);
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : size / known) : d));
  if (out.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(out) !== size) {
    throw new ShapeError(`reshape: cannot reshape ${fmt(from)} (${size} elements) to ${fmt(to)}`);
  }
  return out;
}

/** Output shape of reducing `dims` (all when undefined). */
export function reducedShape(shape: Shape, dims: number[] | undefined, keepdim: boolean, op: string): number[] {
  const ds = dims === undefined ? shape.map((_, i) => i) : dims.map((d) => normDim(d, shape.length, op, shape));
  if (keepdim) return shape.map((d, i) => (ds.includes(i) ? 1 : d));
  return shape.filter((_, i) => !ds.includes(i));
}

export function matmulShape(a: Shape, b: Shape): number[] {
  if (a.length < 1 || b.length < 1) throw new ShapeError(`matmul: both operands need rank >= 1, got ${fmt(a)} and ${fmt(b)}`);
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const k1 = a2[a2.length - 1];
  const k2 = b2[b2.length - 2];
  if (k1 !== k2) throw new ShapeError(`matmul: shapes ${fmt(a)} and ${fmt(b)} do not align (${k1} != ${k2})`);
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2), 'matmul');
  const out = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}
