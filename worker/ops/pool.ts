// 2-D max and average pooling as one op with its own kernels (forward and
// backward), for PyTorch's NCHW (any [..., H, W]) and Keras's NHWC. The
// kernels index the input where it lies, through strides (see PoolKernel).

import * as spec from '../../lib/ops/pool.js';
import { poolGeometry, type Pool2dAttrs } from '../../lib/ops/pool.js';
import { NCHW, NHWC } from '../../lib/ops/conv.js';
import type { PoolKernel, View } from '../backend/kernel.js';
import type { WT } from '../tensor.js';
import type { Ctx } from '../ctx.js';
import { canonical } from './conv.js';
import { implement } from './op.js';

/**
 * t as a view [N, C, H, W] in PyTorch's order: NHWC's dims reordered; [H, W]
 * and [C, H, W] with size-1 leading dims; more than two leading dims folded
 * into N (through a copy when they do not fold as a view).
 */
function poolView(ctx: Ctx, t: WT, channelsLast: boolean): { t: WT; view: View } {
  if (channelsLast) return { t, view: canonical(t, NHWC) };
  const r = t.shape.length;
  if (r === 4) return { t, view: canonical(t, NCHW) };
  if (r <= 3) {
    const lead = 4 - r;
    return { t, view: { shape: [...new Array(lead).fill(1), ...t.shape], strides: [...new Array(lead).fill(0), ...t.strides], offset: t.offset } };
  }
  const [h, w] = t.shape.slice(-2);
  const folded = ctx.reshape(t, [t.size / (h * w), 1, h, w]);
  return { t: folded, view: canonical(folded, NCHW) };
}

function kernel(mode: PoolKernel['mode'], x: View, y: View, dx: View, xShape: number[], at: Pool2dAttrs): PoolKernel {
  const { hw, ohw } = poolGeometry(xShape, at);
  const [n, c] = x.shape;
  return {
    kind: 'pool', mode, dims: [n, c, ...hw, ...ohw, ...at.kernel], stride: at.stride, dilation: at.dilation,
    pad: [at.padding[0], at.padding[2]], end: [hw[0] + at.padding[1], hw[1] + at.padding[3]],
    countIncludePad: at.countIncludePad ?? true, x, y, dx,
  };
}

export const pool2d = implement(spec.pool2d, {
  forward: (ctx, [x], at) => {
    const channelsLast = at.channelsLast ?? false;
    const y = ctx.empty(poolGeometry(x.shape, at).out);
    const cx = poolView(ctx, x, channelsLast);
    const cy = poolView(ctx, y, channelsLast);
    ctx.run(kernel(at.op, cx.view, cy.view, cx.view, x.shape, at), [cx.t], [cy.t]);
    return y;
  },
  backward: (ctx, g, [x], _out, at) => {
    const channelsLast = at.channelsLast ?? false;
    const dx = ctx.empty(x.shape);
    const cx = poolView(ctx, x, channelsLast);
    const cg = poolView(ctx, g, channelsLast);
    const cdx = poolView(ctx, dx, channelsLast);
    const max = at.op === 'max';
    ctx.run(kernel(max ? 'maxGrad' : 'avgGrad', cx.view, cg.view, cdx.view, x.shape, at), max ? [cx.t, cg.t] : [cg.t], [cdx.t]);
    return [dx];
  },
});
