// Argument normalisation shared by the conv and pooling layers and their
// functional forms.

import type { MaxPool2dOptions } from './functional.js';

export type Pair = number | [number, number];

/** A number or [h, w] as [h, w], checked to be integers >= min. */
export function pair(v: Pair, name: string, min = 1): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((Array.isArray(v) && v.length !== 2) || p.some((n) => !Number.isInteger(n) || n < min)) {
    throw new RangeError(`${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** maxPool2d's arguments as pairs, checked (PyTorch allows padding up to half the kernel). */
export function poolParams(kernelSize: Pair, { stride, padding = 0, dilation = 1 }: MaxPool2dOptions = {}) {
  const kernel = pair(kernelSize, 'maxPool2d: kernelSize');
  const pad = pair(padding, 'maxPool2d: padding', 0);
  if (pad[0] > kernel[0] / 2 || pad[1] > kernel[1] / 2) throw new RangeError(`maxPool2d: padding ${JSON.stringify(padding)} must be at most half the kernel size ${JSON.stringify(kernelSize)}`);
  return { kernel, stride: pair(stride ?? kernelSize, 'maxPool2d: stride'), pad, dilation: pair(dilation, 'maxPool2d: dilation') };
}
