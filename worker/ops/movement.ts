// Movement ops. reshape, permute, expand, slice and select are views over the
// same storage (no kernel runs); cat and gather write new tensors.

import * as spec from '../../lib/ops/movement.js';
import { checkGather, checkIndexSelect, checkPerm, expandTarget, sliceBounds } from '../../lib/ops/movement.js';
import { normDim, resolveReshape, sizeOf, type Shape } from '../../lib/shape.js';
import { x } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { implement } from './op.js';

export const reshape = implement(spec.reshape, {
  forward: (ctx, [a], { shape }) => ctx.reshape(a, resolveReshape(a.shape, shape)),
  backward: (ctx, g, [a]) => [ctx.reshape(g, a.shape)],
});

export const permute = implement(spec.permute, {
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

export const expand = implement(spec.expand, {
  forward: (ctx, [a], { shape }) => ctx.expand(a, expandTarget(a.shape, shape)),
  backward: (ctx, g, [a]) => [ctx.sumTo(g, a.shape)],
});

export const slice = implement(spec.slice, {
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
export const select = implement(spec.select, {
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

export const cat = implement(spec.cat, {
  forward: (ctx, ins, at) => {
    const { shape, dtype } = spec.cat.shape(ins, at);
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

/** torch.gather(input, dim, index). */
export const gather = implement(spec.gather, {
  forward: (ctx, [a, idx], { dim, targetsOf }) => {
    const d = checkGather(a.shape, idx.shape, dim, idx.dtype);
    const out = ctx.empty(idx.shape, a.dtype);
    const naming = { op: targetsOf ?? ctx.opName, classTargets: targetsOf !== undefined };
    if (sizeOf(idx.shape) > 0) ctx.run({ kind: 'gather', dim: d, inputShape: a.shape, indexShape: idx.shape, ...naming }, [ctx.contiguous(a), ctx.contiguous(idx)], [out]);
    return out;
  },
  backward: (ctx, g, [a, idx], _o, { dim, targetsOf }) => {
    const d = normDim(dim, a.shape.length, 'gather');
    const out = ctx.empty(a.shape);
    const naming = { op: targetsOf ?? ctx.opName, classTargets: targetsOf !== undefined };
    ctx.run({ kind: 'scatterAdd', dim: d, inputShape: a.shape, indexShape: idx.shape, ...naming }, [ctx.contiguous(g), ctx.contiguous(idx)], [out]);
    return [out, null];
  },
});

/** The gather index that takes whole slices along `dim`: a 1-D index broadcast over the other dims of `shape`. */
function sliceIndex(ctx: Ctx, idx: WT, shape: Shape, dim: number): WT {
  const k = idx.shape[0];
  const lone = shape.map((_, i) => (i === dim ? k : 1));
  return ctx.expand(ctx.reshape(idx, lone), shape.map((n, i) => (i === dim ? k : n)));
}

/** torch.index_select(input, dim, index): whole slices along dim, repeats allowed; the gradient scatter-adds back. */
export const indexSelect = implement(spec.indexSelect, {
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
export const clone = implement(spec.clone, {
  forward: (ctx, [a]) => ctx.map(x(0), [a], a.shape, a.dtype),
  backward: (_ctx, g) => [g],
});
