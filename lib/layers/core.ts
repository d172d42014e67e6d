// Keras core layers: dense, activation, dropout, flatten, reshape.

import type { Tensor } from '../tensor.js';
import { dropout, gelu } from '../nn/functional.js';
import { Parameter } from '../nn/module.js';
import { record } from '../tensor.js';
import { initialize, type InitializerSpec } from './initializers.js';
import { ShapeError, sizeOf } from '../shape.js';
import { Layer, type CallOptions, type LayerArgs, type LayerShape } from './layer.js';
import { integer } from '../validate.js';
import { activationNamed, epilogueOf, type ActivationKey, type ActivationName, type OutputDerivedActivation } from '../ops/activations.js';

export type { ActivationName };

/** Keras's hard sigmoid: clip(0.2 x + 0.5, 0, 1). */
const hardSigmoid = (x: Tensor) => x.mul(0.2).add(0.5).clamp(0, 1);
// SELU's constants (Klambauer et al.), as Keras has them.
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

/** What each activation of the table computes on a layer's output (softmax over the last axis). */
export const ACTIVATION_FNS: Record<ActivationKey, (x: Tensor) => Tensor> = {
  linear: (x) => x,
  relu: (x) => x.relu(),
  sigmoid: (x) => x.sigmoid(),
  tanh: (x) => x.tanh(),
  gelu: (x) => x.gelu(),
  softmax: (x) => x.softmax(-1),
  logSoftmax: (x) => x.logSoftmax(-1),
  elu: (x) => x.elu(),
  softplus: (x) => x.softplus(),
  hardSigmoid,
  selu: (x) => x.where(x.gt(0), x.exp().sub(1).mul(SELU_ALPHA)).mul(SELU_SCALE),
  softsign: (x) => x.div(x.abs().add(1)),
  swish: (x) => x.mul(x.sigmoid()),
  mish: (x) => x.mul(x.softplus().tanh()),
  gelu_new: (x) => gelu(x, { approximate: 'tanh' }),
};

/** The function of an activation name in either spelling (undefined: 'linear'). */
export const activationFn = (name: string | undefined): ((x: Tensor) => Tensor) => ACTIVATION_FNS[activationNamed(name)];

export interface DenseArgs extends LayerArgs {
  units: number;
  activation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: InitializerSpec;
  biasInitializer?: InitializerSpec;
}

/** y = activation(x @ kernel + bias) on the last axis; kernel is [in, units] as in Keras. */
export class Dense extends Layer {
  kernel: Parameter | null = null;
  bias: Parameter | null = null;
  readonly activation: (x: Tensor) => Tensor;

  constructor(readonly args: DenseArgs) {
    super('Dense', args);
    if (!Number.isInteger(args.units) || args.units <= 0) throw new Error(`dense: units must be a positive integer, got ${args.units}`);
    this.activation = activationFn(args.activation);
  }

  override build(inputShape: LayerShape) {
    const inDim = inputShape[inputShape.length - 1];
    if (inDim === null || inDim === undefined) this.shapeError('with a known last dimension', inputShape);
    const { units } = this.args;
    this.kernel = new Parameter(initialize(this.args.kernelInitializer ?? 'glorotUniform', [inDim, units]));
    if (this.args.useBias ?? true) this.bias = new Parameter(initialize(this.args.biasInitializer ?? 'zeros', [units]));
    return super.build(inputShape);
  }

  computeOutputShape(inputShape: LayerShape) {
    return [...inputShape.slice(0, -1), this.args.units];
  }

  /** x @ kernel + bias, then `activation` in the same kernel (the linear op takes the [in, units] kernel as is). */
  private affine(x: Tensor, activation: OutputDerivedActivation | null) {
    const k = this.kernel!;
    if (x.shape[x.shape.length - 1] !== k.shape[0]) throw new ShapeError(`layer '${this.name}' expected ${k.shape[0]} input features but got shape [${x.shape.join(', ')}]`);
    return record('linear', this.bias ? [x, k, this.bias] : [x, k], { activation });
  }

  /** The affine part alone: losses that know the activation (softmax, sigmoid) use logits. */
  logits(x: Tensor) {
    return this.affine(x, null);
  }

  call(x: Tensor) {
    // Fused into the matmul kernel where the derivative follows from the output (gelu's would recompute the matmul).
    const name = activationNamed(this.activationName);
    return epilogueOf(name) === 'output' ? this.affine(x, name as OutputDerivedActivation) : this.activation(this.logits(x));
  }

  get activationName(): string {
    return this.args.activation ?? 'linear';
  }

  getConfig() {
    return { ...this.args };
  }
}

export class Activation extends Layer {
  private fn: (x: Tensor) => Tensor;
  constructor(readonly args: LayerArgs & { activation: ActivationName }) {
    super('Activation', args);
    this.fn = activationFn(args.activation);
  }
  computeOutputShape(s: LayerShape) { return s; }
  call(x: Tensor) { return this.fn(x); }
  getConfig() { return { ...this.args }; }
}

export class Dropout extends Layer {
  constructor(readonly args: LayerArgs & { rate: number; seed?: number }) {
    super('Dropout', args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${args.rate}`);
  }
  computeOutputShape(s: LayerShape) { return s; }
  call(x: Tensor, { training }: CallOptions) {
    return dropout(x, this.args.rate, { training });
  }
  getConfig() { return { ...this.args }; }
}

export class Flatten extends Layer {
  constructor(readonly args: LayerArgs = {}) {
    super('Flatten', args);
  }
  computeOutputShape(s: LayerShape) {
    if (s.some((d) => d === null)) this.shapeError('with known dimensions to flatten', s);
    return [sizeOf(s as number[])];
  }
  call(x: Tensor) { return x.flatten(1); }
  getConfig() { return { ...this.args }; }
}

export class Reshape extends Layer {
  constructor(readonly args: LayerArgs & { targetShape: number[] }) {
    super('Reshape', args);
  }
  computeOutputShape(s: LayerShape) {
    const known = s.every((d) => d !== null) ? sizeOf(s as number[]) : null;
    const fixed = this.args.targetShape.filter((d) => d !== -1);
    const free = known === null ? null : known / sizeOf(fixed);
    const out = this.args.targetShape.map((d) => (d === -1 ? free : d));
    if (known !== null && (out.some((d) => d === null || !Number.isInteger(d)) || sizeOf(out as number[]) !== known)) {
      this.shapeError(`that reshapes to [${this.args.targetShape.join(', ')}]`, s);
    }
    return out;
  }
  call(x: Tensor) { return x.reshape([x.shape[0], ...this.args.targetShape]); }
  getConfig() { return { ...this.args }; }
}

/** [batch, features] -> [batch, n, features]. */
export class RepeatVector extends Layer {
  constructor(readonly args: LayerArgs & { n: number }) {
    super('RepeatVector', args);
    integer(args.n, 'repeatVector: n', 1);
  }
  computeOutputShape(s: LayerShape) {
    if (s.length !== 1) this.shapeError('[features]', s);
    return [this.args.n, s[0]];
  }
  call(x: Tensor) {
    return x.unsqueeze(1).expand(x.shape[0], this.args.n, x.shape[1]);
  }
  getConfig() { return { ...this.args }; }
}
