// Convolution and pooling layers over NCHW images.

import type { Tensor } from '../tensor.js';
import { pair, poolParams, type Pair } from './args.js';
import { conv2d, maxPool2d } from './functional.js';
import { kaimingUniformDefault } from './init.js';
import { Module, Parameter } from './module.js';
import { pyTuple } from './repr.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  bias?: boolean;
}

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'valid' | 'same';
  readonly dilation: [number, number];

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, { stride = 1, padding = 0, dilation = 1, bias = true }: Conv2dOptions = {}) {
    super();
    this.kernelSize = pair(kernelSize, 'Conv2d: kernelSize');
    this.stride = pair(stride, 'Conv2d: stride');
    this.padding = typeof padding === 'string' ? padding : pair(padding, 'Conv2d: padding', 0);
    this.dilation = pair(dilation, 'Conv2d: dilation');
    if (padding === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) throw new RangeError("Conv2d: padding='same' needs stride 1");
    const [kh, kw] = this.kernelSize;
    const fanIn = inChannels * kh * kw;
    this.weight = new Parameter(kaimingUniformDefault([outChannels, inChannels, kh, kw], fanIn));
    this.bias = bias ? new Parameter(kaimingUniformDefault([outChannels], fanIn)) : null;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }

  override extraRepr() {
    const p = this.padding;
    return [
      `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`,
      typeof p === 'string' ? `, padding=${p}` : p[0] || p[1] ? `, padding=${pyTuple(p)}` : '',
      this.dilation[0] !== 1 || this.dilation[1] !== 1 ? `, dilation=${pyTuple(this.dilation)}` : '',
      this.bias ? '' : ', bias=False',
    ].join('');
  }
}

export interface MaxPool2dOptions {
  /** Defaults to the kernel size. */
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}

export class MaxPool2d extends Module {
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;

  constructor(readonly kernelSize: Pair, { stride, padding = 0, dilation = 1 }: MaxPool2dOptions = {}) {
    super();
    this.stride = stride ?? kernelSize;
    this.padding = padding;
    this.dilation = dilation;
    // Fail at construction, not at the first forward.
    poolParams(kernelSize, this);
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }

  override extraRepr() {
    const py = (v: Pair) => (typeof v === 'number' ? String(v) : pyTuple(v));
    return `kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}, padding=${py(this.padding)}, dilation=${py(this.dilation)}, ceil_mode=False`;
  }
}
