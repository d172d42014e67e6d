// Specs of the ops that make tensors from nothing (implemented in worker/ops/create.ts).

import { ShapeError, type DType } from '../shape.js';
import { defineSpec, meta } from './spec.js';

const checkShape = (shape: number[], op: string) => {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`${op}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape;
};

export const full = defineSpec<{ shape: number[]; value: number; dtype: DType }>({
  shape: (_ins, { shape, dtype }) => meta(checkShape(shape, 'full'), dtype),
  differentiable: false,
});

/** Values start, start + step, ... below end (PyTorch's arange). */
export interface RangeAttrs { start: number; end: number; step: number; dtype: DType }

export const arange = defineSpec<RangeAttrs>({
  shape: (_ins, { start, end, step, dtype }) => {
    if (step === 0 || !Number.isFinite(start) || !Number.isFinite(end)) throw new ShapeError(`arange: invalid range (${start}, ${end}, step ${step})`);
    return meta([Math.max(0, Math.ceil((end - start) / step))], dtype);
  },
  differentiable: false,
});

export interface RandomAttrs { shape: number[]; dist: 'uniform' | 'normal' | 'bernoulli'; p?: number; low?: number; high?: number; mean?: number; std?: number }

/** rand (uniform [0,1)), randn (standard normal) and bernoulli masks, keyed by the engine's seed. */
export const random = defineSpec<RandomAttrs>({
  shape: (_ins, { shape }) => meta(checkShape(shape, 'random'), 'float32'),
  differentiable: false,
});
