// Movement ops. reshape, permute, expand, slice and select are views over the
// same storage (no kernel runs); cat and gather write new tensors.

import { broadcastShapes, fmt, normDim, resolveReshape, ShapeError, sizeOf, type Shape } from '../../lib/shape.js';
import { x } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { defineOp, meta } from './op.js';

export const reshape = defineOp<{ shape: number[] }>({
  shape: ([a], { shape }) => meta(resolveReshape(a.shape, shape), a.dtype),
  forward: (ctx, [a], { shape }) => ctx.reshape(a, resolveReshape(a.shape, shape)),
  backward: (ctx, g, [a]) => [ctx.reshape(g, a.shape)],
});

function checkPerm(shape: Shape, dims: number[]): number[] {
  const p = dims.map((d) => normDim(d, shape.length, 'permute', shape));
  if (p.length !== shape.length || new Set(p).size !== p.length) {
    throw new ShapeError(`permute: dims [${dims.join(', ')}] are not a permutation of the ${shape.length} dims of ${fmt(shape)}`);
  }
  return p;
}

export const permute = defineOp<{ dims: number[] }>({
  shape: ([a], { dims }) => meta(checkPerm(a.shape, dims).map((d) => a.shape[d]), a.dtype),
  forward: (ctx, [a], { dims }) => {
    const p = checkPerm(a.shape, dims);
    return ctx.view(a, p.map((d) => a.shape[d]), p.map((d) => a.strides[d]), a.offset);
  },
  backward: (ctx, g, [a], _o, { dims }) => {
    const p = checkPerm(a.shape, dims);
    const inverse = p.map((_, i) => p.indexOf(i));
    return [ctx.op('permute', [g], { dims: inverse })];
  },
});

function expandTarget(from: Shape, shape: number[]): number[] {
  const target = shape.map((d, i) => (d === -1 ? from[i - (shape.length - from.length)] : d));
  const b = broadcastShapes(from, target, 'expand');
  if (b.some((d, i) => d !== target[i])) throw new ShapeError(`expand: cannot expand ${fmt(from)} to ${fmt(shape)}`);
  return target;
}

export const expand = defineOp<{ shape: number[] }>({
  shape: ([a], { shape }) => meta(expandTarget(a.shape, shape), a.dtype),
  forward: (ctx, [a], { shape }) => ctx.expand(a, expandTarget(a.shape, shape)),
  backward: (ctx, g, [a]) => [ctx.sumTo(g, a.shape)],
});

/** Python-style bounds: negatives count from the end, out-of-range clamps. */
function sliceBounds(shape: Shape, dim: number, start = 0, end = Infinity, step = 1) {
  const d = normDim(dim, shape.length, 'slice', shape);
  const n = shape[d];
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice: step must be a positive integer, got ${step}`);
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start);
  const e = Math.max(clampIdx(end), s);
  return { d, s, len: Math.ceil((e - s) / step), step };
}

interface SliceAttrs { dim: number; start?: number; end?: number; step?: number }

export const slice = defineOp<SliceAttrs>({
  shape: ([a], { dim, start, end, step }) => {
    const { d, len } = sliceBounds(a.shape, dim, start, end, step);
    return meta(a.shape.map((n, i) => (i === d ? len : n)), a.dtype);
  },
  forward: (ctx, [a], { dim, start, end, step }) => sliceView(ctx, a, dim, start, end, step),
  backward: (ctx, g, [a], _o, { dim, start, end, step }) => {
    const out = ctx.full(a.shape, 0);
    ctx.mapInto([x(0)], [g], [sliceView(ctx, out, dim, start, end, step)]);
    return [out];
  },
});

function sliceView(ctx: Ctx, a: WT, dim: number, start?: number, end?: number, step?: number): WT {
  const { d, s, len, step: st } = sliceBounds(a.shape, dim, start, end, step);
  const shape = a.shape.map((n, i) => (i === d ? len : n));
  const strides = a.strides.map((v, i) => (i === d ? v * st : v));
  return ctx.view(a, shape, strides, a.offset + s * a.strides[d]);
}

/** x[i] along `dim` (0 by default), dropping that dim; negative i counts from the end. */
export const select = defineOp<{ dim: number; index: number }>({
  shape: ([a], { dim, index }) => {
    const d = normDim(dim, a.shape.length, 'index', a.shape);
    const n = a.shape[d];
    if (!Number.isInteger(index) || index < -n || index >= n) throw new ShapeError(`index: ${index} is out of range for dim ${d} of size ${n} in ${fmt(a.shape)}`);
    return meta(a.shape.filter((_, i) => i !== d), a.dtype);
  },
  forward: (ctx, [a], { dim, index }) => {
    const d = normDim(dim, a.shape.length, 'index', a.shape);
    const i = index < 0 ? index + a.shape[d] : index;
    return ctx.view(a, a.shape.filter((_, j) => j !== d), a.strides.filter((_, j) => j !== d), a.offset + i * a.strides[d]);
  },
  backward: (ctx, g, [a], _o, { dim, index }) => {
    const d = normDim(dim, a.shape.length, 'index', a.shape);
    const i = index < 0 ? index + a.shape[d] : index;
    const out = ctx.full(a.shape, 0);
    const target = ctx.view(out, a.shape.filter((_, j) => j !== d), out.strides.filter((_, j) => j !== d), i * out.strides[d]);
    ctx.mapInto([x(0)], [g], [target]);
    return [out];
  },
});

export const cat = defineOp<{ dim: number }>({
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
  forward: (ctx, ins, at) => {
    const { shape, dtype } = cat.shape(ins, at);
    const d = normDim(at.dim, shape.length, 'cat');
    const out = ctx.empty(shape, dtype);
    let start = 0;
    for (const t of ins) {
      const len = t.shape[d];
      if (t.size > 0) ctx.mapInto([x(0)], [t], [sliceView(ctx, out, d, start, start + len)]);
      start += len;
    }
    return out;
  },
  backward: (ctx, g, ins, _o, { dim }) => {
    const d = normDim(dim, g.shape.length, 'cat');
    let start = 0;
    return ins.map((t) => {
      const piece = sliceView(ctx, g, d, start, start + t.shape[d]);
      start += t.shape[d];
      return piece;
    });
  },
});

function checkGather(input: Shape, index: Shape, dim: number, dtype: string): number {
  const d = normDim(dim, input.length, 'gather', input);
  if (dtype !== 'int32') throw new ShapeError(`gather: index must be int32, got ${dtype}`);
  if (index.length !== input.length || index.some((n, i) => i !== d && n > input[i])) {
    throw new ShapeError(`gather: index shape ${fmt(index)} does not fit input ${fmt(input)} along dim ${dim}`);
  }
  return d;
}

/** torch.gather(input, dim, index). */
export const gather = defineOp<{ dim: number }>({
  shape: ([a, idx], { dim }) => {
    checkGather(a.shape, idx.shape, dim, idx.dtype);
    return meta(idx.shape, a.dtype);
  },
  forward: (ctx, [a, idx], { dim }) => {
    const d = checkGather(a.shape, idx.shape, dim, idx.dtype);
    const out = ctx.empty(idx.shape, a.dtype);
    if (sizeOf(idx.shape) > 0) ctx.run({ kind: 'gather', dim: d, inputShape: a.shape, indexShape: idx.shape, op: ctx.opName }, [ctx.contiguous(a), ctx.contiguous(idx)], [out]);
    return out;
  },
  backward: (ctx, g, [a, idx], _o, { dim }) => {
    const d = normDim(dim, a.shape.length, 'gather');
    const out = ctx.empty(a.shape);
    ctx.run({ kind: 'scatterAdd', dim: d, inputShape: a.shape, indexShape: idx.shape, op: ctx.opName }, [ctx.contiguous(g), ctx.contiguous(idx)], [out]);
    return [out, null];
  },
});

/** The gather index that takes whole slices along `dim`: a 1-D index broadcast over the other dims of `shape`. */
function sliceIndex(ctx: Ctx, idx: WT, shape: Shape, dim: number): WT {
  const k = idx.shape[0];
  const lone = shape.map((_, i) => (i === dim ? k : 1));
  return ctx.expand(ctx.reshape(idx, lone), shape.map((n, i) => (i === dim ? k : n)));
}

function checkIndexSelect(shape: Shape, idx: { shape: number[]; dtype: string }, dim: number): number {
  const d = normDim(dim, shape.length, 'indexSelect', shape);
  if (idx.dtype !== 'int32' || idx.shape.length !== 1) throw new ShapeError(`indexSelect: index must be a 1-D int32 tensor, got ${idx.dtype} of shape ${fmt(idx.shape)}`);
  return d;
}

/** torch.index_select(input, dim, index): whole slices along dim, repeats allowed; the gradient scatter-adds back. */
export const indexSelect = defineOp<{ dim: number }>({
  shape: ([a, idx], { dim }) => {
    const d = checkIndexSelect(a.shape, idx, dim);
    return meta(a.shape.map((n, i) => (i === d ? idx.shape[0] : n)), a.dtype);
  },
  forward: (ctx, [a, idx], { dim }) => {
    const d = checkIndexSelect(a.shape, idx, dim);
    return ctx.op('gather', [a, sliceIndex(ctx, idx, a.shape, d)], { dim: d });
  },
  backward: (ctx, g, [a, idx], out, { dim }) => {
    const d = checkIndexSelect(a.shape, idx, dim);
    return [gather.backward!(ctx, g, [a, sliceIndex(ctx, idx, a.shape, d)], out, { dim: d })[0], null];
  },
});

/** A contiguous copy that still carries gradient (PyTorch's clone). */
export const clone = defineOp<{}>({
  shape: ([a]) => meta(a.shape, a.dtype),
  forward: (ctx, [a]) => ctx.map(x(0), [a], a.shape, a.dtype),
  backward: (_ctx, g) => [g],
});
