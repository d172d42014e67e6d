// Reductions along any set of dims, and softmax / logSoftmax along one.

import * as spec from '../../lib/ops/reduce.js';
import { dimsOf, type ReduceAttrs } from '../../lib/ops/reduce.js';
import { fmt, normDim, reducedShape, ShapeError, sizeOf, type Shape } from '../../lib/shape.js';
import { f, x } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { implement } from './op.js';

/** Splits `shape` around `dim` into the kernel's [outer, n, inner]. */
const around = (shape: Shape, dim: number) => ({
  outer: sizeOf(shape.slice(0, dim)),
  n: shape[dim],
  inner: sizeOf(shape.slice(dim + 1)),
});

/**
 * Reduces `dims`, one kernel per run of neighbouring dims (sum() over a matrix is one), keeping
 * them as size 1, then drops them unless keepdim. The first kernel reads `a` through a
 * prologue, so a lazy elementwise input (sum(x * y)) or a transposed view costs no kernel of its own.
 */
function reduceDims(ctx: Ctx, a: WT, op: 'sum' | 'max' | 'min', attrs: ReduceAttrs, mean: boolean): WT {
  const dims = dimsOf(a.shape, attrs.dims, op);
  for (const d of dims) if (a.shape[d] === 0 && op !== 'sum') throw new ShapeError(`${op}: cannot reduce an empty dim ${d} of ${fmt(a.shape)}`);
  const runs: number[][] = [];
  for (const d of dims) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] === d - 1) last.push(d);
    else runs.push([d]);
  }
  let cur = a;
  for (const run of runs) {
    const first = run[0], end = run[run.length - 1] + 1;
    const outer = sizeOf(cur.shape.slice(0, first)), n = sizeOf(cur.shape.slice(first, end)), inner = sizeOf(cur.shape.slice(end));
    const out = ctx.empty(cur.shape.map((s, i) => (i >= first && i < end ? 1 : s)), cur.dtype);
    const dtype = cur.dtype;
    ctx.runReading(cur, [out], (prologue) => ({ kind: 'reduce', op, outer, n, inner, scale: mean ? 1 / n : 1, dtype, ...(prologue ? { prologue } : {}) }));
    cur = out;
  }
  return ctx.reshape(cur, reducedShape(a.shape, dims, !!attrs.keepdim, op));
}

/** The gradient of a reduction, broadcast back over the reduced dims. */
function expandBack(ctx: Ctx, g: WT, a: WT, attrs: ReduceAttrs, op: string): WT {
  return ctx.reshape(g, reducedShape(a.shape, dimsOf(a.shape, attrs.dims, op), true, op));
}

export const sum = implement(spec.sum, {
  forward: (ctx, [a], at) => reduceDims(ctx, a, 'sum', at, false),
  backward: (ctx, g, [a], _o, at) => [ctx.map(x(0), [expandBack(ctx, g, a, at, 'sum')], a.shape)],
});

export const mean = implement(spec.mean, {
  forward: (ctx, [a], at) => reduceDims(ctx, a.dtype === 'int32' ? ctx.op('cast', [a], { dtype: 'float32' }) : a, 'sum', at, true),
  backward: (ctx, g, [a], out, at) => {
    const n = a.size / Math.max(out.size, 1);
    return [ctx.map(f('div', x(0), { c: n }), [expandBack(ctx, g, a, at, 'mean')], a.shape)];
  },
});

/** amax / amin: the gradient is shared evenly among the tied extremes, as PyTorch does. */
function extreme(op: 'max' | 'min') {
  return implement(spec[op], {
    forward: (ctx, [a], at) => reduceDims(ctx, a, op, at, false),
    backward: (ctx, g, [a], out, at) => {
      const hit = ctx.map(f('eq', x(0), x(1)), [a, expandBack(ctx, out, a, at, op)], a.shape);
      const count = expandBack(ctx, ctx.op('sum', [hit], at), a, at, op);
      return [ctx.map(f('div', f('mul', x(0), x(1)), x(2)), [expandBack(ctx, g, a, at, op), hit, count], a.shape)];
    },
  });
}
export const max = extreme('max');
export const min = extreme('min');

function arg(op: 'argmax' | 'argmin') {
  return implement(spec[op], {
    forward: (ctx, [a], { dim, keepdim }) => {
      const flat = dim === undefined;
      const src = flat ? ctx.reshape(a, [a.size]) : ctx.contiguous(a);
      const d = flat ? 0 : normDim(dim, a.shape.length, op, a.shape);
      if (src.shape[d] === 0) throw new ShapeError(`${op}: cannot reduce an empty dim of ${fmt(a.shape)}`);
      const outShape = reducedShape(src.shape, [d], true, op);
      const out = ctx.empty(outShape, 'int32');
      ctx.run({ kind: 'reduce', op, ...around(src.shape, d), scale: 1, dtype: a.dtype }, [src], [out]);
      const finalShape = flat ? (keepdim ? a.shape.map(() => 1) : []) : reducedShape(a.shape, [d], !!keepdim, op);
      return ctx.reshape(out, finalShape);
    },
  });
}
export const argmax = arg('argmax');
export const argmin = arg('argmin');

function softmaxOp(log: boolean) {
  return implement(log ? spec.logSoftmax : spec.softmax, {
    forward: (ctx, [a], { dim }) => {
      const src = ctx.contiguous(a.dtype === 'int32' ? ctx.op('cast', [a], { dtype: 'float32' }) : a);
      const out = ctx.empty(a.shape);
      const d = normDim(dim, a.shape.length, 'softmax');
      ctx.run({ kind: 'softmax', log, ...(a.shape.length ? around(a.shape, d) : { outer: 1, n: 1, inner: 1 }) }, [src], [out]);
      return out;
    },
    backward: (ctx, g, [a], y, { dim }) => {
      const keep = { dims: [dim], keepdim: true };
      if (log) {
        // d logsoftmax: g - softmax * sum(g)
        const s = ctx.op('sum', [g], keep);
        return [ctx.map(f('sub', x(0), f('mul', f('exp', x(1)), x(2))), [g, y, s], a.shape)];
      }
      // d softmax: y * (g - sum(g * y))
      const s = ctx.op('sum', [ctx.map(f('mul', x(0), x(1)), [g, y])], keep);
      return [ctx.map(f('mul', x(1), f('sub', x(0), x(2))), [g, y, s], a.shape)];
    },
  });
}
export const softmax = softmaxOp(false);
export const logSoftmax = softmaxOp(true);
