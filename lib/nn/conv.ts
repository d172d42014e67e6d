// Convolution and pooling layers over NCHW images.

import type { Tensor } from '../tensor.js';
import { pair, poolParams, type Pair } from './args.js';
import { conv2d, maxPool2d } from './functional.js';
import { kaimingUniformDefault } from './init.js';
import { Module, Parameter } from './module.js';
import { pyTuple } from './repr.js';
import { pyArgs, requireArgs, type PyRest } from './args.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  /** inChannels and outChannels must both be multiples of it (inChannels for depthwise). */
  groups?: number;
  bias?: boolean;
  /** Only 'zeros'. */
  paddingMode?: 'zeros';
}

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'valid' | 'same';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair,
    ...rest: PyRest<[stride: Pair, padding: Pair | 'valid' | 'same', dilation: Pair, groups: number, bias: boolean, paddingMode: 'zeros'], Conv2dOptions>) {
    super();
    requireArgs('Conv2d', { inChannels: [inChannels, 'count'], outChannels: [outChannels, 'count'], kernelSize: [kernelSize, 'pair'] });
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, paddingMode = 'zeros' } = pyArgs<Conv2dOptions>('Conv2d', rest,
      { stride: 'pair', padding: 'padding', dilation: 'pair', groups: 'count', bias: 'boolean', paddingMode: 'string' });
    if (inChannels % groups || outChannels % groups) throw new RangeError(`Conv2d: inChannels ${inChannels} and outChannels ${outChannels} must both be multiples of groups=${groups}`);
    if (paddingMode !== 'zeros') throw new RangeError(`Conv2d: paddingMode '${paddingMode}' is not supported (only 'zeros'; use sn.nn.functional.pad for constant padding)`);
    this.kernelSize = pair(kernelSize, 'Conv2d: kernelSize');
    this.stride = pair(stride, 'Conv2d: stride');
    this.padding = typeof padding === 'string' ? padding : pair(padding, 'Conv2d: padding', 0);
    this.dilation = pair(dilation, 'Conv2d: dilation');
    if (padding === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) throw new RangeError("Conv2d: padding='same' needs stride 1");
    this.groups = groups;
    const [kh, kw] = this.kernelSize;
    const fanIn = (inChannels / groups) * kh * kw;
    this.weight = new Parameter(kaimingUniformDefault([outChannels, inChannels / groups, kh, kw], fanIn));
    this.bias = bias ? new Parameter(kaimingUniformDefault([outChannels], fanIn)) : null;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr() {
    const p = this.padding;
    return [
      `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`,
      typeof p === 'string' ? `, padding=${p}` : p[0] || p[1] ? `, padding=${pyTuple(p)}` : '',
      this.dilation[0] !== 1 || this.dilation[1] !== 1 ? `, dilation=${pyTuple(this.dilation)}` : '',
      this.groups !== 1 ? `, groups=${this.groups}` : '',
      this.bias ? '' : ', bias=False',
    ].join('');
  }
}

export interface MaxPool2dOptions {
  /** Defaults to the kernel size. */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  /** Only false. */
  returnIndices?: boolean;
  /** A last, partial window where the stride leaves pixels over. */
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly ceilMode: boolean;

  constructor(readonly kernelSize: Pair, ...rest: PyRest<[stride: Pair | null, padding: Pair, dilation: Pair, returnIndices: boolean, ceilMode: boolean], MaxPool2dOptions>) {
    super();
    requireArgs('MaxPool2d', { kernelSize: [kernelSize, 'pair'] });
    const { stride, padding = 0, dilation = 1, returnIndices = false, ceilMode = false } = pyArgs<MaxPool2dOptions>('MaxPool2d', rest,
      { stride: 'pair?', padding: 'pair', dilation: 'pair', returnIndices: 'boolean', ceilMode: 'boolean' });
    if (returnIndices) throw new RangeError('MaxPool2d: returnIndices is not supported');
    this.stride = stride ?? kernelSize;
    this.padding = padding;
    this.dilation = dilation;
    this.ceilMode = ceilMode;
    // Fail at construction, not at the first forward.
    poolParams(kernelSize, this);
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode });
  }

  override extraRepr() {
    const py = (v: Pair) => (typeof v === 'number' ? String(v) : pyTuple(v));
    return `kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}, padding=${py(this.padding)}, dilation=${py(this.dilation)}, ceil_mode=${this.ceilMode ? 'True' : 'False'}`;
  }
}
