// Ops behind sn.nn's layers and losses (convolution and pooling have their
// own kernels: conv.ts, pool.ts).

import * as spec from '../../lib/ops/nn.js';
import { paddedShape } from '../../lib/ops/nn.js';
import type { Shape } from '../../lib/shape.js';
import { ELEMENTWISE, c, f, x, type ClassesKernel, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { elementwise } from './elementwise.js';
import { implement } from './op.js';
import { indexSelect } from './movement.js';

/** The region of padded tensor `t` that holds the unpadded values. */
function interior(ctx: Ctx, t: WT, shape: Shape, pad: number[]): WT {
  let offset = t.offset;
  for (let i = 0; i < pad.length / 2; i++) offset += pad[2 * i] * t.strides[t.shape.length - 1 - i];
  return ctx.view(t, shape, t.strides, offset);
}

export const pad = implement(spec.pad, {
  forward: (ctx, [a], { pad, value = 0 }) => {
    const out = ctx.full(paddedShape(a.shape, pad), value, a.dtype);
    ctx.mapInto([x(0)], [a], [interior(ctx, out, a.shape, pad)]);
    return out;
  },
  backward: (ctx, g, [a], _out, { pad }) => [interior(ctx, g, a.shape, pad)],
});

/** The paddingIdx row never receives gradient. */
export const embedding = implement(spec.embedding, {
  forward: (ctx, [w, idx]) => ctx.reshape(ctx.op('indexSelect', [w, ctx.reshape(idx, [idx.size])], { dim: 0 }), [...idx.shape, w.shape[1]]),
  backward: (ctx, g, [w, idx], out, { paddingIdx }) => {
    const flat = ctx.reshape(idx, [idx.size]);
    const [gw] = indexSelect.backward!(ctx, ctx.reshape(g, [idx.size, w.shape[1]]), [w, flat], out, { dim: 0 });
    if (paddingIdx !== undefined) {
      const p = paddingIdx < 0 ? paddingIdx + w.shape[0] : paddingIdx;
      ctx.mapInto([c(0)], [], [ctx.view(gw!, [w.shape[1]], [1], p * w.shape[1])]);
    }
    return [gw, null];
  },
});

const mul = (a: Expr, b: Expr) => f('mul', a, b);
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;
const geluTanhT = (a: Expr) => f('tanh', mul(c(GELU_K), f('add', a, mul(c(GELU_A), mul(a, mul(a, a))))));

/** GELU with PyTorch's approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export const geluTanh = elementwise(spec.geluTanh, () => mul(mul(c(0.5), x(0)), f('add', c(1), geluTanhT(x(0)))), () => 'float32');

const clampedLog = (a: Expr) => f('maximum', f('log', a), c(-100));

/**
 * Unreduced binary cross-entropy of probabilities. As in PyTorch each log is
 * clamped at -100 (so p = 0 or 1 gives a finite loss), and the input gradient
 * is (p - t) / max(p (1 - p), 1e-12).
 */
export const binaryCrossEntropy = implement(spec.binaryCrossEntropy, {
  forward: (ctx, [p, t]) => {
    const loss = f('add', mul(x(1), clampedLog(x(0))), mul(f('sub', c(1), x(1)), clampedLog(f('sub', c(1), x(0)))));
    return ctx.map(f('neg', loss), [p, t], p.shape);
  },
  backward: (ctx, g, [p, t]) => [
    ctx.map(f('div', mul(x(0), f('sub', x(1), x(2))), f('maximum', mul(x(1), f('sub', c(1), x(1))), c(1e-12))), [g, p, t], p.shape),
    ctx.map(mul(x(0), f('sub', clampedLog(f('sub', c(1), x(1))), clampedLog(x(1)))), [g, p], p.shape),
  ],
});

/** The value of a lazy result that reads no tensor (a constant expression), else null. */
function constantOf(t: WT): number | null {
  const p = t.buf.pending;
  if (!p || p.inputs.length || p.dtype !== 'float32') return null;
  const value = (e: Expr): number => ('c' in e ? Math.fround(e.c) : 'op' in e ? Math.fround(ELEMENTWISE[e.op].js(...e.args.map(value))) : NaN);
  return value(p.expr);
}

/** The 'classes' kernel for scores x and targets t (see ClassesKernel). */
const classesKernel = (mode: ClassesKernel['mode'], x: WT, t: WT, weighted: boolean, at: Partial<spec.SoftmaxCrossEntropyAttrs> & { softmax?: boolean }): ClassesKernel => ({
  kind: 'classes', mode, rows: x.shape[0], classes: x.shape[1], sparse: t.shape.length === 1, weighted,
  ignoreIndex: at.ignoreIndex ?? null, smoothing: at.labelSmoothing ?? 0, reduction: at.reduction ?? 'mean', softmax: !!at.softmax, op: at.loss ?? 'accuracy',
  targetOffset: readInPlace(t) ? t.offset : 0,
});

/** Contiguous targets are read where they are (at an offset: a batch of a fit's data); others are copied first. */
const readInPlace = (t: WT) => t.contiguous && !t.buf.pending;
const targets = (ctx: Ctx, t: WT) => (readInPlace(t) ? t : ctx.contiguous(t));

/** Softmax cross-entropy as one kernel each way; the gradient reaches the scores only. */
export const softmaxCrossEntropy = implement(spec.softmaxCrossEntropy, {
  forward: (ctx, [x, t, w], at) => {
    const out = ctx.empty(at.reduction === 'none' ? [x.shape[0]] : []);
    // Where a backward will want it, the same kernel writes the gradient for an incoming gradient of 1.
    const dx = ctx.fuse && x.requiresGrad && x.size > 0 ? ctx.empty(x.shape) : null;
    ctx.run({ ...classesKernel('loss', x, t, !!w, at), withGrad: !!dx }, [ctx.contiguous(x), targets(ctx, t), ...(w ? [ctx.contiguous(w)] : [])], dx ? [out, dx] : [out]);
    if (dx) out.buf.saved = dx.retain();
    return out;
  },
  backward: (ctx, g, [x, t, w], out, at) => {
    const nothing = w ? [null, null] : [null];
    const saved = out.buf.saved;
    if (saved) {
      const seed = constantOf(g);
      // Each row's loss has its own incoming gradient under reduction 'none'.
      const scale = at.reduction === 'none' ? ctx.reshape(g, [x.shape[0], 1]) : g;
      const dx = seed === 1 ? ctx.view(saved, saved.shape, saved.strides, saved.offset) : ctx.map(f('mul', { in: 0 }, { in: 1 }), [saved, scale], x.shape);
      return [dx, ...nothing];
    }
    const dx = ctx.empty(x.shape);
    // The backward seed (a lazy constant 1) travels as a parameter: no kernel computes it.
    const gradConstant = constantOf(g);
    const k = { ...classesKernel('grad', x, t, !!w, at), ...(gradConstant === null ? {} : { gradConstant }) };
    ctx.run(k, [ctx.contiguous(x), targets(ctx, t), ...[...(w ? [w] : []), ...(gradConstant === null ? [g] : [])].map((a) => ctx.contiguous(a))], [dx]);
    return [dx, ...nothing];
  },
});

export const classAccuracy = implement(spec.classAccuracy, {
  forward: (ctx, [x, t], { softmax }) => {
    const out = ctx.empty([]);
    ctx.run(classesKernel('hits', x, t, false, { softmax }), [ctx.contiguous(x), targets(ctx, t)], [out]);
    return out;
  },
});
