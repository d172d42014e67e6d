// 2-D convolution as one op with its own kernels (forward, grad input, grad
// weight), in either layout: PyTorch's NCHW with an [O, C/groups, KH, KW]
// weight, or Keras's NHWC with a [KH, KW, C/groups, O] kernel. The kernels
// index every tensor in PyTorch's order through strides, so channels-last
// tensors are read and written where they lie, never permuted into a copy.
// On WebGPU, ungrouped convolutions instead lower to an im2col copy and the
// matmul kernel: measured on SwiftShader, the direct kernels (shaders/conv.wgsl)
// ran the convnet step slower than im2col + matmul (bench/NOTES.md), so they
// serve grouped convolutions there.

import * as spec from '../../lib/ops/conv.js';
import { geometry, type Conv2dAttrs } from '../../lib/ops/conv.js';
import type { View } from '../backend/kernel.js';
import type { WT } from '../tensor.js';
import type { Ctx } from '../ctx.js';
import { UNARY_OPS } from './elementwise.js';
import { matmulViews, mT } from './matmul.js';
import { pad, windows2d } from './nn.js';
import { implement } from './op.js';

/** A tensor's view with its dims reordered into PyTorch's order. */
const canonical = (t: WT, order: number[]): View => ({ shape: order.map((d) => t.shape[d]), strides: order.map((d) => t.strides[d]), offset: t.offset });

/** A tensor as a WT view with its dims reordered into PyTorch's order. */
const canonicalWT = (ctx: Ctx, t: WT, order: number[]) => { const v = canonical(t, order); return ctx.view(t, v.shape, v.strides, v.offset); };

/** The canonical view back in the tensor's own dim order (the inverse of `order`). */
const ownOrder = (ctx: Ctx, t: WT, order: number[]) => {
  const shape: number[] = [];
  const strides: number[] = [];
  order.forEach((d, i) => { shape[d] = t.shape[i]; strides[d] = t.strides[i]; });
  return ctx.view(t, shape, strides, t.offset);
};

const im2colLowered = (ctx: Ctx, at: Conv2dAttrs) => ctx.backend.name === 'webgpu' && (at.groups ?? 1) === 1;

/**
 * im2col of canonical x [N, C, H, W]: the padded input, its windows [N, C, OH, OW, KH, KW]
 * and the columns [N*OH*OW, C*KH*KW] (a copy), with the attributes windows2d and pad need.
 */
function im2col(ctx: Ctx, x: WT, at: Conv2dAttrs, kh: number, kw: number) {
  const [pt, pb, pl, pr] = at.padding;
  const padAttrs = { pad: [pl, pr, pt, pb] };
  const padded = pt || pb || pl || pr ? pad.forward(ctx, [x], padAttrs) : x;
  const winAttrs = { kernel: [kh, kw] as [number, number], stride: at.stride, dilation: at.dilation };
  const win = windows2d.forward(ctx, [padded], winAttrs);
  const [n, c, oh, ow] = win.shape;
  const perm = [0, 2, 3, 1, 4, 5];
  const rows = ctx.reshape(ctx.view(win, perm.map((d) => win.shape[d]), perm.map((d) => win.strides[d]), win.offset), [n * oh * ow, c * kh * kw]);
  return { padded, padAttrs, win, winAttrs, rows };
}

export const conv2d = implement(spec.conv2d, {
  forward: (ctx, [x, w, b], at) => {
    const { dims, out, xp, wp } = geometry(x.shape, w.shape, b?.shape ?? null, at);
    if (im2colLowered(ctx, at)) {
      const [n, c, , , o, oh, ow, kh, kw] = dims;
      const { rows } = im2col(ctx, canonicalWT(ctx, x, xp), at, kh, kw);
      const wRows = ctx.reshape(canonicalWT(ctx, w, wp), [o, c * kh * kw]);
      // [N*OH*OW, O] is NHWC; NCHW takes one transposing copy.
      const y = ctx.reshape(matmulViews(ctx, rows, mT(ctx, wRows), { bias: b ?? null, activation: at.activation ?? null }), [n, oh, ow, o]);
      return at.channelsLast ? y : ctx.contiguous(ctx.view(y, [n, o, oh, ow], [y.strides[0], y.strides[3], y.strides[1], y.strides[2]], y.offset));
    }
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
    if (im2colLowered(ctx, at)) {
      const [n, c, , , o, oh, ow, kh, kw] = dims;
      const gRows = ctx.reshape(ctx.view(gPre, [n, oh, ow, o], [0, 2, 3, 1].map((d) => canonical(gPre, xp).strides[d]), gPre.offset), [n * oh * ow, o]);
      const wRows = ctx.reshape(canonicalWT(ctx, w, wp), [o, c * kh * kw]);
      const xc = canonicalWT(ctx, x, xp);
      const { padded, padAttrs, win, winAttrs, rows } = im2col(ctx, xc, at, kh, kw);
      let dx: WT | null = null;
      if (x.requiresGrad) {
        const dRows = ctx.reshape(matmulViews(ctx, gRows, wRows), [n, oh, ow, c, kh, kw]);
        const dWin = ctx.view(dRows, win.shape, [0, 3, 1, 2, 4, 5].map((d) => dRows.strides[d]), dRows.offset);
        let dc = windows2d.backward!(ctx, dWin, [padded], win, winAttrs)[0]!;
        if (padded !== xc) dc = pad.backward!(ctx, dc, [xc], padded, padAttrs)[0]!;
        dx = ctx.contiguous(ownOrder(ctx, dc, xp));
      }
      let dw: WT | null = null;
      if (w.requiresGrad) {
        const dwRows = ctx.reshape(matmulViews(ctx, mT(ctx, gRows), rows), [o, c, kh, kw]);
        dw = ctx.contiguous(ownOrder(ctx, dwRows, wp));
      }
      const db: WT | null = b?.requiresGrad ? ctx.op('sum', [gRows], { dims: [0] }) : null;
      return [dx, dw, db];
    }
    const common = { kind: 'conv' as const, dims, stride: at.stride, dilation: at.dilation, pad: [at.padding[0], at.padding[2]] as [number, number], groups: at.groups ?? 1, y: canonical(gPre, xp) };
    let dx: WT | null = null;
    if (x.requiresGrad) {
      dx = ctx.empty(x.shape);
      ctx.run({ ...common, mode: 'gradInput', x: canonical(dx, xp), w: canonical(w, wp) }, [gPre, w], [dx]);
    }
    let dw: WT | null = null;
    if (w.requiresGrad) {
      dw = ctx.empty(w.shape);
      ctx.run({ ...common, mode: 'gradWeight', x: canonical(x, xp), w: canonical(dw, wp) }, [x, gPre], [dw]);
    }
    const db: WT | null = b?.requiresGrad ? ctx.op('sum', [gPre], { dims: at.channelsLast ? [0, 1, 2] : [0, 2, 3] }) : null;
    return [dx, dw, db];
  },
});
