// Keras layers that wrap the PyTorch-style modules: the same engine ops,
// with Keras's layouts (channels last, batch-major sequences), defaults and
// masks. Weights keep the wrapped module's (PyTorch) layout and names.

import { BatchNorm1d, LayerNorm } from '../nn/norm.js';
import { Conv2d, MaxPool2d } from '../nn/conv.js';
import { Embedding as TorchEmbedding } from '../nn/embedding.js';
import { GRU, LSTM, RNN } from '../nn/recurrent.js';
import { dropout as dropoutFn } from '../nn/functional.js';
import { uniform } from '../nn/init.js';
import { pair } from '../nn/args.js';
import { Parameter } from '../nn/module.js';
import { fromTyped, noGrad, type Tensor } from '../tensor.js';
import { activationFn, type ActivationName } from './core.js';
import { Layer, type CallOptions, type LayerArgs, type LayerShape } from './layer.js';

const known = (d: number | null, layer: Layer, s: LayerShape, what: string) => {
  if (d === null || d === undefined) layer.shapeError(`with a known ${what}`, s);
  return d as number;
};

export interface EmbeddingArgs extends LayerArgs {
  inputDim: number;
  outputDim: number;
  /** Index 0 is padding: it produces a mask that recurrent layers honour. */
  maskZero?: boolean;
}

export class Embedding extends Layer {
  embedding: TorchEmbedding | null = null;
  constructor(readonly args: EmbeddingArgs) {
    super('Embedding', args);
  }
  override build(s: LayerShape) {
    this.embedding = new TorchEmbedding(this.args.inputDim, this.args.outputDim);
    // Keras initialises embeddings U(-0.05, 0.05).
    this.embedding.weight = new Parameter(uniform([this.args.inputDim, this.args.outputDim], -0.05, 0.05));
    return super.build(s);
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

export interface RecurrentArgs extends LayerArgs {
  units: number;
  returnSequences?: boolean;
  returnState?: boolean;
  goBackwards?: boolean;
  /** Dropout on the inputs, in training. */
  dropout?: number;
  activation?: 'tanh' | 'relu';
}

abstract class Recurrent extends Layer {
  cell: LSTM | GRU | RNN | null = null;
  constructor(className: string, readonly args: RecurrentArgs) {
    super(className, args);
    if (args.returnState) throw new Error(`${className}: returnState needs a functional model with several outputs; Sequential models have one`);
  }
  protected abstract makeCell(inputSize: number): LSTM | GRU | RNN;
  override build(s: LayerShape) {
    if (s.length !== 2) this.shapeError('[time, features]', s);
    this.cell = this.makeCell(known(s[1], this, s, 'feature count'));
    return super.build(s);
  }
  computeOutputShape(s: LayerShape) {
    return this.args.returnSequences ? [s[0], this.args.units] : [this.args.units];
  }
  call(x: Tensor, { training, mask }: CallOptions) {
    let input = this.args.goBackwards ? reverseTime(x) : x;
    if (training && this.args.dropout) input = dropoutFn(input, this.args.dropout);
    // Masks are taken as trailing padding: each sequence runs to its own length.
    const lengths = mask ? noGrad(() => (this.args.goBackwards ? reverseTime(mask.unsqueeze(-1)).squeeze(-1) : mask).sum(1).int()) : undefined;
    const [output, state] = this.cell!.forward(input, null, lengths ? { lengths } : {}) as [Tensor, Tensor | [Tensor, Tensor]];
    if (this.args.returnSequences) return output;
    const h = Array.isArray(state) ? state[0] : state;
    return h.index(-1);
  }
  override computeMask(_x: Tensor, mask: Tensor | null) {
    return this.args.returnSequences ? mask : null;
  }
  getConfig() { return { ...this.args }; }
}

/** x[:, ::-1]: the time axis reversed. */
function reverseTime(x: Tensor) {
  const t = x.shape[1];
  const order = Int32Array.from({ length: t }, (_, i) => t - 1 - i);
  return x.gather(1, fromTyped(order, [1, t, ...x.shape.slice(2).map(() => 1)], 'int32').expand(...x.shape));
}

export class LSTMLayer extends Recurrent {
  constructor(args: RecurrentArgs) { super('LSTM', args); }
  protected makeCell(n: number) { return new LSTM(n, this.args.units, { batchFirst: true }); }
}
export class GRULayer extends Recurrent {
  constructor(args: RecurrentArgs) { super('GRU', args); }
  protected makeCell(n: number) { return new GRU(n, this.args.units, { batchFirst: true }); }
}
export class SimpleRNN extends Recurrent {
  constructor(args: RecurrentArgs) { super('SimpleRNN', args); }
  protected makeCell(n: number) { return new RNN(n, this.args.units, { batchFirst: true, nonlinearity: this.args.activation ?? 'tanh' }); }
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
  getConfig() { return { ...this.args }; }
}

export interface Conv2dArgs extends LayerArgs {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
  activation?: ActivationName;
  useBias?: boolean;
}

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
    this.conv = new Conv2d(known(s[2], this, s, 'channel count'), this.args.filters, k, { stride: strides, padding, bias: this.args.useBias ?? true });
    return super.build(s);
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
