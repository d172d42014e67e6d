// 2-D convolution as one op with its own kernels (forward, grad input, grad
// weight), in either layout: PyTorch's NCHW with an [O, C/groups, KH, KW]
// weight, or Keras's NHWC with a [KH, KW, C/groups, O] kernel. The kernels
// index every tensor in PyTorch's order through strides, so channels-last
// tensors are read and written where they lie, never permuted into a copy.
// WebGPU runs each mode as an implicit GEMM (shaders/conv.wgsl): no im2col
// buffer in memory.

import * as spec from '../../lib/ops/conv.js';
import { geometry } from '../../lib/ops/conv.js';
import type { View } from '../backend/kernel.js';
import type { WT } from '../tensor.js';
import { UNARY_OPS } from './elementwise.js';
import { implement } from './op.js';

/** A tensor's view with its dims reordered into PyTorch's order (pooling's kernels read theirs the same way). */
export const canonical = (t: WT, order: number[]): View => ({ shape: order.map((d) => t.shape[d]), strides: order.map((d) => t.strides[d]), offset: t.offset });

export const conv2d = implement(spec.conv2d, {
  forward: (ctx, [x, w, b], at) => {
    const { dims, out, xp, wp } = geometry(x.shape, w.shape, b?.shape ?? null, at);
    const y = ctx.empty(out);
    ctx.run({
      kind: 'conv', mode: 'forward', dims, stride: at.stride, dilation: at.dilation, pad: [at.padding[0], at.padding[2]], groups: at.groups ?? 1,
      x: canonical(x, xp), w: canonical(w, wp), y: canonical(y, xp), bias: !!b, activation: at.activation ?? null,
    }, b ? [x, w, ctx.contiguous(b)] : [x, w], [y]);
    return y;
  },
  backward: (ctx, g, [x, w, b], out, at) => {
    const { dims, xp, wp } = geometry(x.shape, w.shape, b?.shape ?? null, at);
    const act = at.activation ?? null;
    // relu, sigmoid and tanh derivatives follow from the output; gelu's needs the pre-activation, recomputed.
    const gPre: WT =
      act === null ? g
      : act === 'gelu' ? UNARY_OPS.gelu.backward!(ctx, g, [conv2d.forward(ctx, b ? [x, w, b] : [x, w], { ...at, activation: null })], out, {})[0]!
      : UNARY_OPS[act].backward!(ctx, g, [out], out, {})[0]!;
    const common = { kind: 'conv' as const, dims, stride: at.stride, dilation: at.dilation, pad: [at.padding[0], at.padding[2]] as [number, number], groups: at.groups ?? 1, y: canonical(gPre, xp) };
    let dx: WT | null = null;
    if (x.requiresGrad) {
      dx = ctx.empty(x.shape);
      ctx.run({ ...common, mode: 'gradInput', x: canonical(dx, xp), w: canonical(w, wp) }, [gPre, w], [dx]);
    }
    let dw: WT | null = null;
    if (w.requiresGrad) {
      const chunks = ctx.backend.name === 'webgpu' ? gradWeightChunks(dims, at.groups ?? 1) : 1;
      if (chunks === 1) {
        dw = ctx.empty(w.shape);
        ctx.run({ ...common, mode: 'gradWeight', x: canonical(x, xp), w: canonical(dw, wp) }, [x, gPre], [dw]);
      } else {
        // Each chunk of the sum writes its own dw into [chunks, ...w.shape]; one reduction adds them.
        const partial = ctx.empty([chunks, ...w.shape]);
        const first = ctx.view(partial, w.shape, partial.strides.slice(1), 0);
        ctx.run({ ...common, mode: 'gradWeight', chunks, x: canonical(x, xp), w: canonical(first, wp) }, [x, gPre], [partial]);
        dw = ctx.op('sum', [partial], { dims: [0] });
      }
    }
    const db: WT | null = b?.requiresGrad ? ctx.op('sum', [gPre], { dims: at.channelsLast ? [0, 1, 2] : [0, 2, 3] }) : null;
    return [dx, dw, db];
  },
});

/** Workgroups a grad-weight dispatch should reach (per group) before its sum is cut into chunks. */
const GRAD_WEIGHT_WORKGROUPS = 16;
/** The fewest (n, p) rows of the sum a chunk takes: fewer would cost more in partial sums than they save. */
const MIN_CHUNK_ROWS = 64;

/**
 * How many chunks to cut grad weight's sum over (n, p) into: a layer with few output tiles
 * (conv 1 -> 32, 3x3: a 32 x 9 dw, one workgroup) would otherwise run the whole batch's sum
 * on a handful of threads of one workgroup, i.e. on one core of a software adapter.
 */
function gradWeightChunks(dims: spec.ConvDims, groups: number) {
  const [n, c, , , o, oh, , kh, kw] = dims;
  const tiles = Math.ceil(o / groups / 32) * Math.ceil((c / groups) * kh * kw / 32);
  return Math.max(1, Math.min(Math.ceil(GRAD_WEIGHT_WORKGROUPS / tiles), Math.floor((n * oh) / MIN_CHUNK_ROWS)));
}
