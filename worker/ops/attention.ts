// Scaled dot-product attention as one op. Two lowerings of the same math:
// - fused: one kernel per pass (shaders/attention.wgsl on WebGPU; the CPU
//   oracle's loops elsewhere) that walks the keys a tile at a time with a
//   running max and sum, so the [N, H, L, S] scores never exist in memory; the
//   backward recomputes them from each row's logsumexp (gradQ, then gradKV);
// - composed: q kᵀ (scale, mask and causal block in the matmul's store),
//   softmax, then · v, and the textbook backward over the probabilities.
// Which one runs: sn.init({ attention: 'fused' | 'composed' }). Composed is
// the default: on SwiftShader the fused kernels measured slower (bench/NOTES.md),
// so fused is for memory (attention over long sequences whose scores would not fit).

import * as spec from '../../lib/ops/attention.js';
import type { AttentionAttrs } from '../../lib/ops/attention.js';
import { c, f, x, type AttentionKernel, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { matmulViews, mT } from './matmul.js';
import { implement } from './op.js';

/** The fused WGSL kernel keeps a row of q and of the output in registers: head sizes up to this. */
const MAX_FUSED_HEAD = 128;

/** Fused when asked for, where the kernel takes the head sizes. */
const useFused = (ctx: Ctx, q: WT, v: WT) =>
  ctx.attention === 'fused' && (ctx.backend.name !== 'webgpu' || Math.max(q.shape[3], v.shape[3]) <= MAX_FUSED_HEAD);

function runFused(ctx: Ctx, mode: AttentionKernel['mode'], [q, k, v, mask]: (WT | undefined)[], at: AttentionAttrs, inputs: WT[], viewed: WT[], outputs: WT[]) {
  const [n, h, l, d] = q!.shape;
  const [, , s, dv] = v!.shape;
  const maskView = mask ? [ctx.expand(mask, [n, h, l, s])] : [];
  ctx.run({
    kind: 'attention', mode, dims: [n, h, l, s, d, dv], scale: at.scale, causal: !!at.causal, mask: !!mask,
    views: [q!, k!, v!, ...maskView, ...viewed].map((t) => t.view),
  }, [q!, k!, v!, ...maskView, ...inputs], outputs);
}

/** softmax(q kᵀ · scale + mask, causal block) as [N, H, L, S] probabilities. */
function probabilities(ctx: Ctx, q: WT, k: WT, mask: WT | undefined, at: AttentionAttrs) {
  const [, , l] = q.shape;
  const s = k.shape[2];
  const extra: WT[] = [];
  let expr: Expr = f('mul', x(0), c(at.scale));
  if (mask) expr = f('add', expr, x(extra.push(mask)));
  if (at.causal) {
    const range = (end: number, shape: number[]) => ctx.reshape(ctx.op('arange', [], { start: 0, end, step: 1, dtype: 'float32' }), shape);
    const row = x(extra.push(range(l, [l, 1])));
    const col = x(extra.push(range(s, [1, s])));
    expr = f('where', f('gt', col, row), c(-Infinity), expr);
  }
  return ctx.op('softmax', [matmulViews(ctx, q, mT(ctx, k), { expr, extra })], { dim: 3 });
}

const scaled = (scale: number): Expr => f('mul', x(0), c(scale));

export const attention = implement(spec.attention, {
  forward: (ctx, ins, at) => {
    const [q, k, v] = ins;
    if (!useFused(ctx, q, v)) return matmulViews(ctx, probabilities(ctx, q, k, ins[3], at), v);
    const [n, h, l] = q.shape;
    const dv = v.shape[3];
    // Written [N, L, H, DV]: the heads side by side, as attention layers flatten them next (a free view).
    const y = ctx.empty([n, l, h, dv]);
    const o = ctx.view(y, [n, h, l, dv], [y.strides[0], y.strides[2], y.strides[1], y.strides[3]], 0);
    runFused(ctx, 'forward', ins, at, [], [o], [o]);
    return o;
  },
  backward: (ctx, g, ins, out, at) => {
    const [q, k, v, mask] = ins;
    // A mask that wants its gradient needs the [L, S] score gradients: the composed backward makes them.
    if (useFused(ctx, q, v) && !mask?.requiresGrad) {
      const [n, h, l] = q.shape;
      const dq = ctx.empty(q.shape);
      const stats = ctx.empty([n * h * l, 2]);
      runFused(ctx, 'gradQ', ins, at, [out, g], [out, g, dq], [dq, stats]);
      if (!k.requiresGrad && !v.requiresGrad) return [dq, null, null, null];
      const dk = ctx.empty(k.shape);
      const dv = ctx.empty(v.shape);
      runFused(ctx, 'gradKV', ins, at, [g, stats], [g, dk, dv], [dk, dv]);
      return [dq, dk, dv, null];
    }
    const p = probabilities(ctx, q, k, mask, at);
    const dp = matmulViews(ctx, g, mT(ctx, v));
    const rowDot = ctx.op('sum', [ctx.map(f('mul', x(0), x(1)), [dp, p])], { dims: [3], keepdim: true });
    const ds = ctx.map(f('mul', x(1), f('sub', x(0), x(2))), [dp, p, rowDot]);
    return [
      q.requiresGrad ? matmulViews(ctx, ds, k, { expr: scaled(at.scale) }) : null,
      k.requiresGrad ? matmulViews(ctx, mT(ctx, ds), q, { expr: scaled(at.scale) }) : null,
      v.requiresGrad ? matmulViews(ctx, mT(ctx, p), g) : null,
      mask?.requiresGrad ? ctx.sumTo(ds, mask.shape) : null,
    ];
  },
});
