// Keras layers that wrap the PyTorch-style modules: the same engine ops,
// with Keras's layouts (channels last, batch-major sequences), defaults and
// masks. Weights live in the wrapped module's (PyTorch) layout; getWeights
// and setWeights convert to and from Keras's, and initializers are Keras's.

import { BatchNorm1d, LayerNorm } from '../nn/norm.js';
import { Conv2d, MaxPool2d } from '../nn/conv.js';
import { Embedding as TorchEmbedding } from '../nn/embedding.js';
import { pair } from '../nn/args.js';
import { Parameter } from '../nn/module.js';
import { noGrad, type Tensor } from '../tensor.js';
import { activationFn, type ActivationName } from './core.js';
import { initialize, type InitializerSpec } from './initializers.js';
import { Layer, type CallOptions, type KerasWeight, type LayerArgs, type LayerShape } from './layer.js';

const known = (d: number | null, layer: Layer, s: LayerShape, what: string) => {
  if (d === null || d === undefined) layer.shapeError(`with a known ${what}`, s);
  return d as number;
};

export interface EmbeddingArgs extends LayerArgs {
  inputDim: number;
  outputDim: number;
  /** Index 0 is padding: it produces a mask that recurrent layers honour, wherever the padding sits. */
  maskZero?: boolean;
  embeddingsInitializer?: InitializerSpec;
}

export class Embedding extends Layer {
  embedding: TorchEmbedding | null = null;
  constructor(readonly args: EmbeddingArgs) {
    super('Embedding', args);
  }
  override build(s: LayerShape) {
    this.embedding = new TorchEmbedding(this.args.inputDim, this.args.outputDim);
    this.embedding.weight = new Parameter(initialize(this.args.embeddingsInitializer ?? 'randomUniform', [this.args.inputDim, this.args.outputDim]));
    return super.build(s);
  }
  override kerasWeights(): KerasWeight[] {
    return [{ name: 'embeddings', value: this.embedding!.weight, trainable: true }];
  }
  computeOutputShape(s: LayerShape) { return [...s, this.args.outputDim]; }
  call(x: Tensor) { return this.embedding!.forward(x.int()); }
  override computeMask(x: Tensor, mask: Tensor | null) {
    return this.args.maskZero ? noGrad(() => x.ne(0)) : mask;
  }
  getConfig() { return { ...this.args }; }
}

/** Masks time steps whose features all equal maskValue, and zeroes them. */
export class Masking extends Layer {
  constructor(readonly args: LayerArgs & { maskValue?: number }) {
    super('Masking', args);
  }
  computeOutputShape(s: LayerShape) { return s; }
  private maskOf(x: Tensor) {
    return noGrad(() => x.ne(this.args.maskValue ?? 0).max(-1));
  }
  call(x: Tensor) { return x.mul(this.maskOf(x).unsqueeze(-1)); }
  override computeMask(x: Tensor) { return this.maskOf(x); }
  getConfig() { return { ...this.args }; }
}

export class LayerNormalization extends Layer {
  norm: LayerNorm | null = null;
  constructor(readonly args: LayerArgs & { epsilon?: number }) {
    super('LayerNormalization', args);
  }
  override build(s: LayerShape) {
    this.norm = new LayerNorm(known(s[s.length - 1], this, s, 'last dimension'), { eps: this.args.epsilon ?? 1e-3 });
    return super.build(s);
  }
  computeOutputShape(s: LayerShape) { return s; }
  call(x: Tensor) { return this.norm!.forward(x); }
  override kerasWeights(): KerasWeight[] {
    return [{ name: 'gamma', value: this.norm!.weight!, trainable: true }, { name: 'beta', value: this.norm!.bias!, trainable: true }];
  }
  getConfig() { return { ...this.args }; }
}

/** Normalises the last (channel) axis; Keras's momentum 0.99 is PyTorch's 0.01. */
export class BatchNormalization extends Layer {
  norm: BatchNorm1d | null = null;
  constructor(readonly args: LayerArgs & { momentum?: number; epsilon?: number }) {
    super('BatchNormalization', args);
  }
  override build(s: LayerShape) {
    this.norm = new BatchNorm1d(known(s[s.length - 1], this, s, 'channel count'), { eps: this.args.epsilon ?? 1e-3, momentum: 1 - (this.args.momentum ?? 0.99) });
    return super.build(s);
  }
  computeOutputShape(s: LayerShape) { return s; }
  call(x: Tensor, { training }: CallOptions) {
    this.norm!.train(training);
    if (x.shape.length === 2) return this.norm!.forward(x);
    // Channels last -> [N, C, L] for BatchNorm1d, and back.
    const c = x.shape[x.shape.length - 1];
    const flat = x.reshape([x.shape[0], -1, c]).permute(0, 2, 1);
    return this.norm!.forward(flat).permute(0, 2, 1).reshape([...x.shape]);
  }
  override kerasWeights(): KerasWeight[] {
    const n = this.norm!;
    return [
      { name: 'gamma', value: n.weight!, trainable: true }, { name: 'beta', value: n.bias!, trainable: true },
      { name: 'moving_mean', value: n.running_mean!, trainable: false }, { name: 'moving_variance', value: n.running_var!, trainable: false },
    ];
  }
  getConfig() { return { ...this.args }; }
}

export interface Conv2dArgs extends LayerArgs {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
  activation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: InitializerSpec;
  biasInitializer?: InitializerSpec;
}

/** Keras's conv kernel [kh, kw, in, out] <-> PyTorch's [out, in, kh, kw]. */
const convToKeras = (w: Tensor) => w.permute(2, 3, 1, 0);
const convFromKeras = (w: Tensor) => w.permute(3, 2, 0, 1);

function samePadding(layer: Layer, k: [number, number], strides: [number, number], s: LayerShape): [number, number] {
  if (k.some((v) => v % 2 === 0) || strides.some((v) => v !== 1)) {
    layer.shapeError(`padding 'same' with an odd kernel and stride 1 (asymmetric padding is not supported)`, s);
  }
  return [(k[0] - 1) / 2, (k[1] - 1) / 2];
}

/** NHWC convolution, as in Keras. */
export class Conv2D extends Layer {
  conv: Conv2d | null = null;
  private act: (x: Tensor) => Tensor;
  constructor(readonly args: Conv2dArgs) {
    super('Conv2D', args);
    this.act = activationFn(args.activation);
  }
  private geometry(s: LayerShape) {
    const k = pair(this.args.kernelSize, 'conv2d: kernelSize');
    const strides = pair(this.args.strides ?? 1, 'conv2d: strides');
    const padding = this.args.padding === 'same' ? samePadding(this, k, strides, s) : ([0, 0] as [number, number]);
    return { k, strides, padding };
  }
  override build(s: LayerShape) {
    if (s.length !== 3) this.shapeError('[height, width, channels]', s);
    const { k, strides, padding } = this.geometry(s);
    const inChannels = known(s[2], this, s, 'channel count');
    const conv = new Conv2d(inChannels, this.args.filters, k, { stride: strides, padding, bias: this.args.useBias ?? true });
    conv.weight = new Parameter(convFromKeras(initialize(this.args.kernelInitializer ?? 'glorotUniform', [k[0], k[1], inChannels, this.args.filters])).clone());
    if (conv.bias) conv.bias = new Parameter(initialize(this.args.biasInitializer ?? 'zeros', [this.args.filters]));
    this.conv = conv;
    return super.build(s);
  }
  override kerasWeights(): KerasWeight[] {
    const w: KerasWeight[] = [{ name: 'kernel', value: this.conv!.weight, trainable: true, toKeras: convToKeras, fromKeras: convFromKeras }];
    if (this.conv!.bias) w.push({ name: 'bias', value: this.conv!.bias, trainable: true });
    return w;
  }
  computeOutputShape(s: LayerShape) {
    const { k, strides, padding } = this.geometry(s);
    const out = (d: number | null, i: number) => (d === null ? null : Math.floor((d + 2 * padding[i] - k[i]) / strides[i]) + 1);
    return [out(s[0], 0), out(s[1], 1), this.args.filters];
  }
  call(x: Tensor) {
    return this.act(this.conv!.forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1));
  }
  getConfig() { return { ...this.args }; }
}

export class MaxPooling2D extends Layer {
  pool: MaxPool2d;
  constructor(readonly args: LayerArgs & { poolSize?: number | [number, number]; strides?: number | [number, number] }) {
    super('MaxPooling2D', args);
    this.pool = new MaxPool2d(args.poolSize ?? 2, { stride: args.strides ?? args.poolSize ?? 2 });
  }
  computeOutputShape(s: LayerShape) {
    const k = pair(this.args.poolSize ?? 2, 'maxPooling2d: poolSize');
    const st = pair(this.args.strides ?? this.args.poolSize ?? 2, 'maxPooling2d: strides');
    return [s[0] === null ? null : Math.floor((s[0] - k[0]) / st[0]) + 1, s[1] === null ? null : Math.floor((s[1] - k[1]) / st[1]) + 1, s[2]];
  }
  call(x: Tensor) {
    return this.pool.forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1);
  }
  getConfig() { return { ...this.args }; }
}
