// conv2d's spec: PyTorch's NCHW with an [O, C/groups, KH, KW] weight, or
// Keras's NHWC with a [KH, KW, C/groups, O] kernel (channelsLast); the
// worker's kernels index both through strides (worker/ops/conv.ts).

import { fmt, ShapeError, type Shape } from '../shape.js';
import { defineSpec, meta } from './spec.js';

export interface Conv2dAttrs {
  stride: [number, number];
  /** [top, bottom, left, right]: Keras's and PyTorch's 'same' put an odd extra row or column after. */
  padding: [number, number, number, number];
  dilation: [number, number];
  groups?: number;
  /** Applied in the kernel's store, after the bias. */
  activation?: 'relu' | 'sigmoid' | 'tanh' | 'gelu' | null;
  /** Keras's layout: x [N, H, W, C], kernel [KH, KW, C/groups, O], output [N, OH, OW, O]. */
  channelsLast?: boolean;
}

/** Where PyTorch's dims [N, C, H, W] / [O, C/g, KH, KW] / [N, O, OH, OW] sit in each layout. */
export const NCHW = [0, 1, 2, 3];
export const NHWC = [0, 3, 1, 2];
export const KERAS_KERNEL = [3, 2, 0, 1];

/** [N, C, H, W, O, OH, OW, KH, KW]. */
export type ConvDims = [number, number, number, number, number, number, number, number, number];

/** The canonical dims, the output shape and where each layout keeps PyTorch's dims. */
export function geometry(x: Shape, w: Shape, bias: Shape | null, at: Conv2dAttrs) {
  const { stride, padding, dilation, groups = 1, channelsLast = false } = at;
  const ints = [...stride, ...dilation, groups];
  if (stride?.length !== 2 || dilation?.length !== 2 || padding?.length !== 4 || ints.some((v) => !Number.isInteger(v) || v < 1) || padding.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new ShapeError(`conv2d: stride and dilation must be pairs of positive integers, padding four non-negative ones and groups a positive integer, got ${JSON.stringify({ stride, padding, dilation, groups })}`);
  }
  const layout = channelsLast ? '[N, H, W, C]' : '[N, C, H, W]';
  const kLayout = channelsLast ? '[kH, kW, C/groups, out]' : '[out, C/groups, kH, kW]';
  if (x.length !== 4 || w.length !== 4) throw new ShapeError(`conv2d: input ${fmt(x)} must be ${layout} and weight ${fmt(w)} ${kLayout}`);
  const xp = channelsLast ? NHWC : NCHW;
  const wp = channelsLast ? KERAS_KERNEL : NCHW;
  const [n, c, h, wd] = xp.map((d) => x[d]);
  const [o, cg, kh, kw] = wp.map((d) => w[d]);
  if (c !== cg * groups || o % groups !== 0 || o === 0) {
    throw new ShapeError(`conv2d: input ${fmt(x)} (${layout}) and weight ${fmt(w)} (${kLayout}) do not fit with groups=${groups}: C must be groups x weight's C/groups and out a multiple of groups`);
  }
  if (bias && (bias.length !== 1 || bias[0] !== o)) throw new ShapeError(`conv2d: bias ${fmt(bias)} must be [${o}] for weight ${fmt(w)}`);
  const oh = Math.floor((h + padding[0] + padding[1] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((wd + padding[2] + padding[3] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  if (oh < 1 || ow < 1) {
    throw new ShapeError(`conv2d: kernel ${fmt([kh, kw])} with dilation ${fmt(dilation)} does not fit input ${fmt(x)} padded by ${fmt(padding)}`);
  }
  return { dims: [n, c, h, wd, o, oh, ow, kh, kw] as ConvDims, out: channelsLast ? [n, oh, ow, o] : [n, o, oh, ow], xp, wp };
}

export const conv2d = defineSpec<Conv2dAttrs>({
  shape: ([x, w, b], at) => {
    if (x.dtype !== 'float32' || w.dtype !== 'float32') throw new ShapeError(`conv2d: input and weight must be float32, got ${x.dtype} and ${w.dtype}`);
    return meta(geometry(x.shape, w.shape, b?.shape ?? null, at).out, 'float32');
  },
});
