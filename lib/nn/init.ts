// Parameter initialisers matching PyTorch's defaults.

import { record, type Tensor } from '../tensor.js';

/** U(low, high), drawn in the worker from the seeded stream. */
export const uniform = (shape: readonly number[], low: number, high: number): Tensor =>
  record('random', [], { shape: [...shape], dist: 'uniform', low, high });

/** N(mean, std^2). */
export const normal = (shape: readonly number[], mean = 0, std = 1): Tensor =>
  record('random', [], { shape: [...shape], dist: 'normal', mean, std });

/** PyTorch's Linear/Conv default: kaiming_uniform_(a=sqrt(5)), which reduces to U(±1/sqrt(fanIn)). */
export const kaimingUniformDefault = (shape: readonly number[], fanIn: number): Tensor => {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(shape, -bound, bound);
};
