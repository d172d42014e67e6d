// pool2d's spec: max or average over 2-D windows, as PyTorch's max_pool2d /
// avg_pool2d (NCHW, or any [..., H, W]) and Keras's MaxPooling2D /
// AveragePooling2D (NHWC, channelsLast) compute them. The worker's kernels
// index either layout through strides (worker/ops/pool.ts).

import { fmt, ShapeError, type Shape } from '../shape.js';
import { defineSpec, meta } from './spec.js';

export interface Pool2dAttrs {
  op: 'max' | 'avg';
  kernel: [number, number];
  stride: [number, number];
  /** [top, bottom, left, right]: max pools see -Infinity there, average pools zeros. */
  padding: [number, number, number, number];
  dilation: [number, number];
  /** PyTorch's ceil_mode: a last, partial window when the stride leaves pixels over (it must start inside the image or the top/left padding). */
  ceilMode?: boolean;
  /** Average pools: padding counts in each window's divisor (PyTorch's default); false counts the real pixels only (Keras's 'same'). */
  countIncludePad?: boolean;
  /** Keras's layout: x [N, H, W, C], output [N, OH, OW, C]. */
  channelsLast?: boolean;
}

/** Output length along one axis, as PyTorch computes it (ceil mode drops a window that would start in the end padding). */
export function pooledLength(size: number, kernel: number, stride: number, before: number, after: number, dilation: number, ceil: boolean) {
  const span = size + before + after - dilation * (kernel - 1) - 1;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (out - 1) * stride >= size + before) out--;
  return out;
}

/** [H, W], [OH, OW] and the output shape of pooling x with these attributes. */
export function poolGeometry(x: Shape, at: Pool2dAttrs) {
  const { kernel, stride, padding, dilation, channelsLast = false, ceilMode = false } = at;
  const pos = [...(kernel ?? []), ...(stride ?? []), ...(dilation ?? [])];
  if (kernel?.length !== 2 || stride?.length !== 2 || dilation?.length !== 2 || padding?.length !== 4 || pos.some((v) => !Number.isInteger(v) || v < 1) || padding.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new ShapeError(`pool2d: kernel, stride and dilation must be pairs of positive integers and padding four non-negative ones, got ${JSON.stringify({ kernel, stride, dilation, padding })}`);
  }
  if (channelsLast ? x.length !== 4 : x.length < 2) throw new ShapeError(`pool2d: input ${fmt(x)} must be ${channelsLast ? '[N, H, W, C]' : '[..., H, W]'}`);
  const [h, w] = channelsLast ? [x[1], x[2]] : x.slice(-2);
  const oh = pooledLength(h, kernel[0], stride[0], padding[0], padding[1], dilation[0], ceilMode);
  const ow = pooledLength(w, kernel[1], stride[1], padding[2], padding[3], dilation[1], ceilMode);
  if (oh < 1 || ow < 1) {
    throw new ShapeError(`pool2d: window ${fmt(kernel)} with dilation ${fmt(dilation)} does not fit input ${fmt(x)} padded by ${fmt(padding)}`);
  }
  const out = channelsLast ? [x[0], oh, ow, x[3]] : [...x.slice(0, -2), oh, ow];
  return { hw: [h, w] as [number, number], ohw: [oh, ow] as [number, number], out };
}

export const pool2d = defineSpec<Pool2dAttrs>({
  shape: ([x], at) => {
    if (x.dtype !== 'float32') throw new ShapeError(`pool2d: input must be float32, got ${x.dtype}`);
    if (at.op !== 'max' && at.op !== 'avg') throw new ShapeError(`pool2d: op must be 'max' or 'avg', got ${JSON.stringify(at.op)}`);
    return meta(poolGeometry(x.shape, at).out, 'float32');
  },
});
