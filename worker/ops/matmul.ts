// matmul with PyTorch's rules: 1-D operands, batched 3-D and more, batch dims
// broadcast. Operands are passed as strided views, so transposes are free.

import * as spec from '../../lib/ops/matmul.js';
import { epilogueOf, type Activation } from '../../lib/ops/activations.js';
import { broadcastShapes, matmulShape, sizeOf } from '../../lib/shape.js';
import { activationExpr, f, x, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { UNARY_OPS } from './elementwise.js';
import { implement } from './op.js';

/** The operand as a matrix (or batch of them): 1-D a becomes [1, K], 1-D b becomes [K, 1]. */
const asMatrix = (ctx: Ctx, t: WT, left: boolean) =>
  t.shape.length >= 2 ? t : ctx.view(t, left ? [1, t.shape[0]] : [t.shape[0], 1], left ? [0, t.strides[0]] : [t.strides[0], 0], t.offset);

/** Batch dims folded into one stride; copies only when the view's batch dims cannot fold. */
function batchFolded(ctx: Ctx, t: WT, batchShape: number[]) {
  const r = t.shape.length;
  let v = ctx.expand(t, [...batchShape, t.shape[r - 2], t.shape[r - 1]]);
  const nb = batchShape.length;
  const dims = batchShape.map((d, i) => [d, v.strides[i]]).filter(([d]) => d !== 1);
  const foldable = dims.every(([, s], i) => i === dims.length - 1 || s === dims[i + 1][0] * dims[i + 1][1]);
  if (!foldable) v = ctx.contiguous(v);
  const inner = dims.length ? (foldable ? dims[dims.length - 1][1] : v.strides[nb - 1]) : 0;
  return { t: v, batchStride: inner, rowStride: v.strides[nb], colStride: v.strides[nb + 1] };
}

/**
 * Fused into the matmul's store: a [N] bias added to every row, then an activation, or any
 * elementwise `expr` of the sum (input 0) and `extra` tensors broadcast to the result (inputs 1...).
 */
export interface Epilogue {
  bias?: WT | null;
  activation?: Activation | null;
  expr?: Expr;
  extra?: WT[];
}

/** Matrix product of two strided operands with rank >= 2 (then the epilogue); returns [...batch, M, N]. */
export function matmulViews(ctx: Ctx, a: WT, b: WT, { bias = null, activation = null, expr, extra = [] }: Epilogue = {}): WT {
  if (!expr) {
    const sum = bias ? f('add', x(0), x(1)) : x(0);
    return matmulViews(ctx, a, b, { expr: activation ? activationExpr(activation, sum) : sum, extra: bias ? [bias] : [] });
  }
  // The kernels compute in f32: int32 operands are promoted first (read as raw bits they would be garbage).
  const asFloat = (t: WT) => (t.dtype === 'int32' ? ctx.map(x(0), [t], t.shape, 'float32') : t);
  a = asFloat(a);
  b = asFloat(b);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  const A = batchFolded(ctx, a, batchShape);
  const B = batchFolded(ctx, b, batchShape);
  const out = ctx.empty([...batchShape, m, n]);
  // An empty sum is zero: the epilogue alone.
  if (k === 0) return ctx.map(expr, [ctx.full(out.shape, 0), ...extra], out.shape);
  ctx.runMatmul({
    kind: 'matmul', batch: sizeOf(batchShape), m, n, k,
    a: { offset: A.t.offset, batchStride: A.batchStride, rowStride: A.rowStride, colStride: A.colStride },
    b: { offset: B.t.offset, batchStride: B.batchStride, rowStride: B.rowStride, colStride: B.colStride },
  }, A.t, B.t, out, expr, extra);
  return out;
}

/** Swaps the last two dims as a view. */
export const mT = (ctx: Ctx, t: WT) => {
  const r = t.shape.length;
  const shape = [...t.shape];
  const strides = [...t.strides];
  [shape[r - 2], shape[r - 1]] = [shape[r - 1], shape[r - 2]];
  [strides[r - 2], strides[r - 1]] = [strides[r - 1], strides[r - 2]];
  return ctx.view(t, shape, strides, t.offset);
};

export const matmul = implement(spec.matmul, {
  forward: (ctx, [a, b]) => ctx.reshape(matmulViews(ctx, asMatrix(ctx, a, true), asMatrix(ctx, b, false)), matmulShape(a.shape, b.shape)),
  backward: (ctx, g, [a, b]) => {
    const A = asMatrix(ctx, a, true);
    const B = asMatrix(ctx, b, false);
    const G = ctx.reshape(g, [...broadcastShapes(A.shape.slice(0, -2), B.shape.slice(0, -2)), A.shape[A.shape.length - 2], B.shape[B.shape.length - 1]]);
    // Only the gradients some input wants: a GEMM each.
    const dA = a.requiresGrad ? ctx.reshape(ctx.sumTo(matmulViews(ctx, G, mT(ctx, B)), A.shape), a.shape) : null;
    const dB = b.requiresGrad ? ctx.reshape(ctx.sumTo(matmulViews(ctx, mT(ctx, A), G), B.shape), b.shape) : null;
    return [dA, dB];
  },
});

/**
 * dW = Xᵀ @ dY and db = dY summed over rows in one kernel: the GEMM loads every row of dY
 * (its B operand) anyway, so it sums them into a second output.
 */
function weightAndBiasGrads(ctx: Ctx, X: WT, gPre: WT): [WT, WT] {
  const A = mT(ctx, X);
  const [k, m] = X.shape;
  const n = gPre.shape[1];
  if (k === 0) return [ctx.full([m, n], 0), ctx.full([n], 0)];
  const dW = ctx.empty([m, n]);
  const db = ctx.empty([n]);
  ctx.runMatmul({
    kind: 'matmul', batch: 1, m, n, k,
    a: { offset: A.offset, batchStride: 0, rowStride: A.strides[0], colStride: A.strides[1] },
    b: { offset: gPre.offset, batchStride: 0, rowStride: gPre.strides[0], colStride: gPre.strides[1] },
  }, A, gPre, dW, x(0), [], db);
  return [dW, db];
}

/** Leading dims folded into rows: [..., d] as [prod(...), d]. */
const rows = (ctx: Ctx, t: WT) => ctx.reshape(t, [sizeOf(t.shape.slice(0, -1)), t.shape[t.shape.length - 1]]);

/**
 * act(x @ w + b) as ONE matmul kernel with a bias + activation epilogue.
 * nn.Linear passes its [out, in] weight as the view weight.T, Keras Dense
 * its kernel as is.
 */
export const linear = implement(spec.linear, {
  forward: (ctx, [x, w, b], { activation = null }) =>
    ctx.reshape(matmulViews(ctx, rows(ctx, x), w, { bias: b, activation }), [...x.shape.slice(0, -1), w.shape[1]]),
  backward: (ctx, g, [x, w, b], out, { activation = null }) => {
    const X = rows(ctx, x);
    const G = rows(ctx, g);
    const O = rows(ctx, out);
    // Most derivatives follow from the output (relu's sign is the output's);
    // the others need the pre-activation, recomputed here.
    const pre = () => (epilogueOf(activation!) === 'output' ? O : matmulViews(ctx, X, w, { bias: b }));
    const gPre = activation === null ? G : UNARY_OPS[activation].backward!(ctx, G, [pre()], O, {})[0]!;
    // Only the gradients some input wants (the first layer's input, data, wants none).
    const dX = x.requiresGrad ? ctx.reshape(matmulViews(ctx, gPre, mT(ctx, w)), x.shape) : null;
    if (w.requiresGrad && b?.requiresGrad && ctx.fuse && X.dtype === 'float32') return [dX, ...weightAndBiasGrads(ctx, X, gPre)];
    const dW = w.requiresGrad ? matmulViews(ctx, mT(ctx, X), gPre) : null;
    return b ? [dX, dW, b.requiresGrad ? ctx.op('sum', [gPre], { dims: [0] }) : null] : [dX, dW];
  },
});
