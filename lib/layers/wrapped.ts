// Keras layers that wrap the PyTorch-style modules: the same engine ops,
// with Keras's layouts (channels last, batch-major sequences), defaults and
// masks. Weights live in the wrapped module's (PyTorch) layout; getWeights
// and setWeights convert to and from Keras's, and initializers are Keras's.

import { BatchNorm1d, LayerNorm } from '../nn/norm.js';
import { Embedding as TorchEmbedding } from '../nn/embedding.js';
import { Parameter } from '../nn/module.js';
import { noGrad, type Tensor } from '../tensor.js';
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
