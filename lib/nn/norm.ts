// Normalization layers.

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { full, noGrad, ones, zeros, type Tensor } from '../tensor.js';
import { batchNorm, layerNorm } from './functional.js';
import { Buffer, Module, Parameter } from './module.js';
import { pyBool, pyFloat, pyTuple } from './repr.js';
import { pyArgs, requireArgs, type PyRest } from './args.js';

export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(normalizedShape: number | number[], ...rest: PyRest<[eps: number, elementwiseAffine: boolean], { eps?: number; elementwiseAffine?: boolean }>) {
    super();
    const dims = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d > 0)) throw new TypeError(`LayerNorm: normalizedShape must be a positive integer or an array of them, got ${JSON.stringify(normalizedShape)}`);
    const { eps = 1e-5, elementwiseAffine = true } = pyArgs<{ eps?: number; elementwiseAffine?: boolean }>('LayerNorm', rest, { eps: 'number', elementwiseAffine: 'boolean' });
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = eps;
    this.elementwiseAffine = elementwiseAffine;
    this.weight = elementwiseAffine ? new Parameter(ones(this.normalizedShape)) : null;
    this.bias = elementwiseAffine ? new Parameter(zeros(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, { eps: this.eps });
  }

  override extraRepr() {
    return `${pyTuple(this.normalizedShape)}, eps=${pyFloat(this.eps)}, elementwise_affine=${pyBool(this.elementwiseAffine)}`;
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** Weight of each batch in the running stats; null for a cumulative average. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * Batch normalization of [N, C] or [N, C, L]. Buffers carry PyTorch's
 * state_dict names: running_mean, running_var, num_batches_tracked.
 */
export class BatchNorm1d extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  running_mean: Buffer | null;
  running_var: Buffer | null;
  num_batches_tracked: Buffer | null;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(readonly numFeatures: number, ...rest: PyRest<[eps: number, momentum: number | null, affine: boolean, trackRunningStats: boolean], BatchNormOptions>) {
    super();
    requireArgs('BatchNorm1d', { numFeatures: [numFeatures, 'count'] });
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = pyArgs<BatchNormOptions>('BatchNorm1d', rest,
      { eps: 'number', momentum: 'number?', affine: 'boolean', trackRunningStats: 'boolean' });
    this.eps = eps;
    this.momentum = momentum;
    this.affine = affine;
    this.trackRunningStats = trackRunningStats;
    this.weight = affine ? new Parameter(ones([numFeatures])) : null;
    this.bias = affine ? new Parameter(zeros([numFeatures])) : null;
    this.running_mean = trackRunningStats ? new Buffer(zeros([numFeatures])) : null;
    this.running_var = trackRunningStats ? new Buffer(ones([numFeatures])) : null;
    this.num_batches_tracked = trackRunningStats ? new Buffer(full([], 0, { dtype: 'int32' })) : null;
  }

  forward(x: Tensor): Tensor {
    if ((x.ndim !== 2 && x.ndim !== 3) || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`BatchNorm1d: expected input [N, ${this.numFeatures}] or [N, ${this.numFeatures}, L], got ${fmt(x.shape)}`);
    }
    let momentum: number | Tensor = this.momentum ?? 0;
    const nbt = this.num_batches_tracked;
    if (this.training && nbt) {
      runtime().enqueue(['assign', nbt.id, noGrad(() => nbt.add(1)).id]);
      // momentum null: a cumulative average, weight 1/num_batches_tracked (computed in the worker, no readback).
      if (this.momentum === null) momentum = noGrad(() => nbt.float().rdiv(1));
    }
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, { training: this.training || !this.trackRunningStats, momentum, eps: this.eps });
  }

  override extraRepr() {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, affine=${pyBool(this.affine)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }
}
