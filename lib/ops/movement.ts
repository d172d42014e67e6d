// Specs of the movement ops (implemented in worker/ops/movement.ts):
// reshape, permute, expand, slice and select are views; cat and gather copy.

import { broadcastShapes, fmt, normDim, resolveReshape, ShapeError, type Shape } from '../shape.js';
import { defineSpec, meta, type Meta } from './spec.js';

export const reshape = defineSpec<{ shape: number[] }>({
  shape: ([a], { shape }) => meta(resolveReshape(a.shape, shape), a.dtype),
});

/** The permutation with negative dims normalised; throws unless it permutes every dim once. */
export function checkPerm(shape: Shape, dims: number[]): number[] {
  const p = dims.map((d) => normDim(d, shape.length, 'permute', shape));
  if (p.length !== shape.length || new Set(p).size !== p.length) {
    throw new ShapeError(`permute: dims [${dims.join(', ')}] are not a permutation of the ${shape.length} dims of ${fmt(shape)}`);
  }
  return p;
}

export const permute = defineSpec<{ dims: number[] }>({
  shape: ([a], { dims }) => meta(checkPerm(a.shape, dims).map((d) => a.shape[d]), a.dtype),
});

/** The expanded shape, -1 keeping a dim. */
export function expandTarget(from: Shape, shape: number[]): number[] {
  const target = shape.map((d, i) => (d === -1 ? from[i - (shape.length - from.length)] : d));
  const b = broadcastShapes(from, target, 'expand');
  if (b.some((d, i) => d !== target[i])) throw new ShapeError(`expand: cannot expand ${fmt(from)} to ${fmt(shape)}`);
  return target;
}

export const expand = defineSpec<{ shape: number[] }>({
  shape: ([a], { shape }) => meta(expandTarget(a.shape, shape), a.dtype),
});

/** Python-style bounds: negatives count from the end, out-of-range clamps. */
export function sliceBounds(shape: Shape, dim: number, start = 0, end = Infinity, step = 1) {
  const d = normDim(dim, shape.length, 'slice', shape);
  const n = shape[d];
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice: step must be a positive integer, got ${step}`);
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start);
  const e = Math.max(clampIdx(end), s);
  return { d, s, len: Math.ceil((e - s) / step), step };
}

export interface SliceAttrs { dim: number; start?: number; end?: number; step?: number }

export const slice = defineSpec<SliceAttrs>({
  shape: ([a], { dim, start, end, step }) => {
    const { d, len } = sliceBounds(a.shape, dim, start, end, step);
    return meta(a.shape.map((n, i) => (i === d ? len : n)), a.dtype);
  },
});

/** x[i] along `dim` (0 by default), dropping that dim; negative i counts from the end. */
export const select = defineSpec<{ dim: number; index: number }>({
  shape: ([a], { dim, index }) => {
    const d = normDim(dim, a.shape.length, 'index', a.shape);
    const n = a.shape[d];
    if (!Number.isInteger(index) || index < -n || index >= n) throw new ShapeError(`index: ${index} is out of range for dim ${d} of size ${n} in ${fmt(a.shape)}`);
    return meta(a.shape.filter((_, i) => i !== d), a.dtype);
  },
});

export const cat = defineSpec<{ dim: number }>({
  shape: (ins, { dim }) => {
    if (ins.length === 0) throw new ShapeError('cat: expected a non-empty list of tensors');
    const first = ins[0];
    const d = normDim(dim, first.shape.length, 'cat', first.shape);
    for (const t of ins) {
      if (t.shape.length !== first.shape.length || t.shape.some((n, i) => i !== d && n !== first.shape[i])) {
        throw new ShapeError(`cat: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ outside dim ${dim}`);
      }
    }
    const dtype = ins.every((t) => t.dtype === 'int32') ? 'int32' : 'float32';
    return meta(first.shape.map((n, i) => (i === d ? ins.reduce((s, t) => s + t.shape[d], 0) : n)), dtype);
  },
});

/** The normalised dim; throws unless index (int32) fits input along every other dim. */
export function checkGather(input: Shape, index: Shape, dim: number, dtype: string): number {
  const d = normDim(dim, input.length, 'gather', input);
  if (dtype !== 'int32') throw new ShapeError(`gather: index must be int32, got ${dtype}`);
  if (index.length !== input.length || index.some((n, i) => i !== d && n > input[i])) {
    throw new ShapeError(`gather: index shape ${fmt(index)} does not fit input ${fmt(input)} along dim ${dim}`);
  }
  return d;
}

/** torch.gather(input, dim, index); `targetsOf` names the class loss whose targets the indices are, for its errors. */
export const gather = defineSpec<{ dim: number; targetsOf?: string }>({
  shape: ([a, idx], { dim }) => {
    checkGather(a.shape, idx.shape, dim, idx.dtype);
    return meta(idx.shape, a.dtype);
  },
});

/** The normalised dim; throws unless the index is a 1-D int32 tensor. */
export function checkIndexSelect(shape: Shape, idx: Meta, dim: number): number {
  const d = normDim(dim, shape.length, 'indexSelect', shape);
  if (idx.dtype !== 'int32' || idx.shape.length !== 1) throw new ShapeError(`indexSelect: index must be a 1-D int32 tensor, got ${idx.dtype} of shape ${fmt(idx.shape)}`);
  return d;
}

/** torch.index_select(input, dim, index): whole slices along dim, repeats allowed. */
export const indexSelect = defineSpec<{ dim: number }>({
  shape: ([a, idx], { dim }) => {
    const d = checkIndexSelect(a.shape, idx, dim);
    return meta(a.shape.map((n, i) => (i === d ? idx.shape[0] : n)), a.dtype);
  },
});

/** A contiguous copy that still carries gradient (PyTorch's clone). */
export const clone = defineSpec<{}>({
  shape: ([a]) => meta(a.shape, a.dtype),
});
