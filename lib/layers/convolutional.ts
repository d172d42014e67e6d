// Keras convolution and pooling layers, channels last: conv1d, conv2d,
// maxPooling2d, averagePooling2d, the global poolings and upSampling2d.
// Kernels are stored in Keras's layout ([k, in, out], [kh, kw, in, out]) and
// fed as they are, with the NHWC input, to the conv2d op nn.Conv2d uses (its
// kernels read either layout through strides); 'same' padding is Keras's
// (the odd extra row or column goes after), for any kernel and stride.

import { pair, type Pair } from '../nn/args.js';
import { Parameter } from '../nn/module.js';
import { record, type Tensor } from '../tensor.js';
import { activationFn, type ActivationName } from './core.js';
import { initialize, type InitializerSpec } from './initializers.js';
import { Layer, type CallOptions, type LayerArgs, type LayerShape } from './layer.js';

export type Padding = 'valid' | 'same';

/** Activations the conv2d kernel applies in its store (their derivatives follow from the output). */
const FUSED = new Set<string>(['relu', 'sigmoid', 'tanh']);

/** Keras's output size and [before, after] padding of one spatial dim (null: known only at run time). */
function geometry1d(size: number | null, k: number, stride: number, dilation: number, padding: Padding | 'causal') {
  const span = (k - 1) * dilation + 1;
  if (size === null) return { out: null, pads: [0, 0] as [number, number] };
  if (padding === 'valid') return { out: Math.floor((size - span) / stride) + 1, pads: [0, 0] as [number, number] };
  if (padding === 'causal') return { out: Math.floor((size - 1) / stride) + 1, pads: [span - 1, 0] as [number, number] };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  return { out, pads: [total >> 1, total - (total >> 1)] as [number, number] };
}

function checkPadding(layer: string, padding: string, allowed: string[]) {
  if (!allowed.includes(padding)) throw new Error(`${layer}: padding must be ${allowed.map((p) => `'${p}'`).join(' or ')}, got '${padding}'`);
}

interface ConvArgs<K, P = Padding> extends LayerArgs {
  filters: number;
  kernelSize: K;
  strides?: K;
  padding?: P;
  dilationRate?: K;
  activation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: InitializerSpec;
  biasInitializer?: InitializerSpec;
}
export type Conv1dArgs = ConvArgs<number | [number], Padding | 'causal'>;
export type Conv2dArgs = ConvArgs<Pair>;

/** A convolution over the spatial dims of channels-last input, as a 2-D one (conv1d: height 1). */
abstract class Conv extends Layer {
  kernel: Parameter | null = null;
  bias: Parameter | null = null;
  protected readonly act: (x: Tensor) => Tensor;

  constructor(className: string, readonly args: ConvArgs<unknown, Padding | 'causal'>) {
    super(className, args);
    if (!Number.isInteger(args.filters) || args.filters <= 0) throw new Error(`${className}: filters must be a positive integer, got ${args.filters}`);
    this.act = activationFn(args.activation);
  }

  /** Kernel, strides and dilation as [h, w]. */
  protected abstract dims(): { k: [number, number]; strides: [number, number]; dilation: [number, number] };
  protected abstract spatial(s: LayerShape): (number | null)[];

  protected geometry(s: LayerShape) {
    const { k, strides, dilation } = this.dims();
    const sp = this.spatial(s);
    const padding = (this.args.padding ?? 'valid') as Padding | 'causal';
    const g = sp.map((d, i) => geometry1d(d, k[i], strides[i], dilation[i], padding));
    if (g.some((d) => d.out !== null && d.out < 1)) this.shapeError(`large enough for kernel [${k.join(', ')}] with dilation [${dilation.join(', ')}]`, s);
    return g;
  }

  override build(s: LayerShape) {
    const inChannels = s[s.length - 1];
    if (inChannels === null || inChannels === undefined) this.shapeError('with a known channel count', s);
    this.geometry(s);
    this.kernel = new Parameter(initialize(this.args.kernelInitializer ?? 'glorotUniform', [...this.kernelDims(), inChannels, this.args.filters]));
    if (this.args.useBias ?? true) this.bias = new Parameter(initialize(this.args.biasInitializer ?? 'zeros', [this.args.filters]));
    return super.build(s);
  }

  protected abstract kernelDims(): number[];

  computeOutputShape(s: LayerShape): LayerShape {
    return [...this.geometry(s).map((d) => d.out), this.args.filters];
  }

  /** x [N, H, W, C] (channels last) -> [N, OH, OW, filters]; relu, sigmoid and tanh run in the kernel's store. */
  protected conv2dNHWC(x: Tensor, kernel4: Tensor) {
    const { k, strides, dilation } = this.dims();
    const [, h, w] = x.shape;
    const padding = (this.args.padding ?? 'valid') as Padding | 'causal';
    const [ph, pw] = [geometry1d(h, k[0], strides[0], dilation[0], padding).pads, geometry1d(w, k[1], strides[1], dilation[1], padding).pads];
    const name = this.args.activation ?? 'linear';
    const fused = FUSED.has(name);
    const y = record('conv2d', this.bias ? [x, kernel4, this.bias] : [x, kernel4], {
      stride: strides, padding: [...ph, ...pw], dilation, channelsLast: true, activation: fused ? name : null,
    });
    return fused ? y : this.act(y);
  }

  getConfig() { return { ...this.args }; }
}

const single = (v: number | [number] | undefined, fallback: number, what: string): number => {
  const n = Array.isArray(v) ? v[0] : v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

/** Convolution over time: [batch, steps, channels] -> [batch, newSteps, filters]; kernel [k, in, filters]. */
export class Conv1D extends Conv {
  constructor(override readonly args: Conv1dArgs) {
    super('Conv1D', args);
    checkPadding('conv1d', args.padding ?? 'valid', ['valid', 'same', 'causal']);
  }
  protected dims() {
    const a = this.args;
    return {
      k: [1, single(a.kernelSize, 1, 'conv1d: kernelSize')] as [number, number],
      strides: [1, single(a.strides, 1, 'conv1d: strides')] as [number, number],
      dilation: [1, single(a.dilationRate, 1, 'conv1d: dilationRate')] as [number, number],
    };
  }
  protected spatial(s: LayerShape) {
    if (s.length !== 2) this.shapeError('[steps, channels]', s);
    return [1, s[0]];
  }
  protected kernelDims() { return [this.dims().k[1]]; }
  override computeOutputShape(s: LayerShape): LayerShape {
    return [this.geometry(s)[1].out, this.args.filters];
  }
  call(x: Tensor) {
    if (x.ndim !== 3) this.shapeError('[steps, channels]', x.shape.slice(1));
    return this.conv2dNHWC(x.unsqueeze(1), this.kernel!.unsqueeze(0)).squeeze(1);
  }
}

/** NHWC convolution; kernel [kh, kw, in, filters]. */
export class Conv2D extends Conv {
  constructor(override readonly args: Conv2dArgs) {
    super('Conv2D', args);
    checkPadding('conv2d', args.padding ?? 'valid', ['valid', 'same']);
  }
  protected dims() {
    const a = this.args;
    return { k: pair(a.kernelSize, 'conv2d: kernelSize'), strides: pair(a.strides ?? 1, 'conv2d: strides'), dilation: pair(a.dilationRate ?? 1, 'conv2d: dilationRate') };
  }
  protected spatial(s: LayerShape) {
    if (s.length !== 3) this.shapeError('[height, width, channels]', s);
    return [s[0], s[1]];
  }
  protected kernelDims() { return this.dims().k; }
  call(x: Tensor) {
    if (x.ndim !== 4) this.shapeError('[height, width, channels]', x.shape.slice(1));
    return this.conv2dNHWC(x, this.kernel!);
  }
}

export interface Pooling2dArgs extends LayerArgs {
  poolSize?: Pair;
  strides?: Pair;
  padding?: Padding;
}

/** Max or average over 2-D windows of NHWC input; 'same' windows see only real pixels (Keras's count). */
abstract class Pooling2D extends Layer {
  constructor(className: string, readonly args: Pooling2dArgs) {
    super(className, args);
    checkPadding(className, args.padding ?? 'valid', ['valid', 'same']);
    this.dims();
  }
  protected dims() {
    const k = pair(this.args.poolSize ?? 2, `${this.className}: poolSize`);
    return { k, strides: pair(this.args.strides ?? k, `${this.className}: strides`) };
  }
  private geometry(h: number | null, w: number | null) {
    const { k, strides } = this.dims();
    const padding = this.args.padding ?? 'valid';
    return [geometry1d(h, k[0], strides[0], 1, padding), geometry1d(w, k[1], strides[1], 1, padding)];
  }
  computeOutputShape(s: LayerShape): LayerShape {
    if (s.length !== 3) this.shapeError('[height, width, channels]', s);
    const [gh, gw] = this.geometry(s[0], s[1]);
    if ((gh.out !== null && gh.out < 1) || (gw.out !== null && gw.out < 1)) this.shapeError(`at least as large as the pool [${this.dims().k.join(', ')}]`, s);
    return [gh.out, gw.out, s[2]];
  }
  /** The pool2d op over NHWC x; 'same' pads as TensorFlow does (the odd pixel after). */
  protected pool(x: Tensor, op: 'max' | 'avg') {
    const { k, strides } = this.dims();
    const [gh, gw] = this.geometry(x.shape[1], x.shape[2]);
    return record('pool2d', [x], {
      op, kernel: k, stride: strides, padding: [...gh.pads, ...gw.pads], dilation: [1, 1], channelsLast: true,
      // Keras averages the real pixels of a 'same' window only.
      countIncludePad: false,
    });
  }
  getConfig() { return { ...this.args }; }
}

export class MaxPooling2D extends Pooling2D {
  constructor(args: Pooling2dArgs) { super('MaxPooling2D', args); }
  call(x: Tensor) { return this.pool(x, 'max'); }
}

export class AveragePooling2D extends Pooling2D {
  constructor(args: Pooling2dArgs) { super('AveragePooling2D', args); }
  call(x: Tensor) { return this.pool(x, 'avg'); }
}

/** Mean or max over the steps ([batch, steps, channels]) or the pixels ([batch, h, w, channels]). */
export class GlobalPooling extends Layer {
  constructor(className: 'GlobalAveragePooling1D' | 'GlobalAveragePooling2D' | 'GlobalMaxPooling1D' | 'GlobalMaxPooling2D', readonly args: LayerArgs = {}) {
    super(className, args);
  }
  private get rank() { return this.className.endsWith('1D') ? 2 : 3; }
  computeOutputShape(s: LayerShape): LayerShape {
    if (s.length !== this.rank) this.shapeError(this.rank === 2 ? '[steps, channels]' : '[height, width, channels]', s);
    return [s[s.length - 1]];
  }
  call(x: Tensor, { mask }: CallOptions) {
    const dims = this.rank === 2 ? [1] : [1, 2];
    const average = this.className.startsWith('GlobalAverage');
    if (!mask || this.rank !== 2) return average ? x.mean(dims) : x.max(dims);
    // Keras leaves masked steps out of the pooling.
    const m = mask.float().unsqueeze(-1);
    return average ? x.mul(m).sum(1).div(m.sum(1)) : x.where(m.gt(0), -Infinity).max(1);
  }
  override computeMask() { return null; }
  getConfig() { return { ...this.args }; }
}

/** Nearest-neighbour upsampling of NHWC input by `size` [rows, cols]. */
export class UpSampling2D extends Layer {
  constructor(readonly args: LayerArgs & { size?: Pair; interpolation?: 'nearest' | 'bilinear' }) {
    super('UpSampling2D', args);
    pair(args.size ?? 2, 'upSampling2d: size');
    if ((args.interpolation ?? 'nearest') !== 'nearest') throw new Error(`upSampling2d: interpolation '${args.interpolation}' is not supported; use 'nearest'`);
  }
  computeOutputShape(s: LayerShape): LayerShape {
    if (s.length !== 3) this.shapeError('[height, width, channels]', s);
    const [a, b] = pair(this.args.size ?? 2, 'upSampling2d: size');
    return [s[0] === null ? null : s[0] * a, s[1] === null ? null : s[1] * b, s[2]];
  }
  call(x: Tensor) {
    const [a, b] = pair(this.args.size ?? 2, 'upSampling2d: size');
    const [n, h, w, c] = x.shape;
    return x.reshape(n, h, 1, w, 1, c).expand(n, h, a, w, b, c).reshape(n, h * a, w * b, c);
  }
  getConfig() { return { ...this.args }; }
}
