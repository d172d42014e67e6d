// Optimizers for compile(): a name with Keras's defaults, or an sn.optim instance.

import type { Parameter } from '../nn/module.js';
import { Adam, AdamW, Optimizer, RMSprop, SGD } from '../optim/index.js';

export type OptimizerLike = Optimizer<{ lr: number }>;

const BY_NAME = {
  sgd: (p) => new SGD(p, { lr: 0.01 }),
  adam: (p) => new Adam(p, { lr: 0.001, eps: 1e-7 }),
  adamw: (p) => new AdamW(p, { lr: 0.001, eps: 1e-7 }),
  rmsprop: (p) => new RMSprop(p, { lr: 0.001, alpha: 0.9, eps: 1e-7 }),
} satisfies Record<string, (params: Parameter[]) => OptimizerLike>;

/** Optimizer names compile() takes (any case), each with Keras's defaults; pass an sn.optim instance for other settings. */
export type OptimizerName = keyof typeof BY_NAME;

/**
 * How to make the optimizer compile() asked for, checked now: a model built at its first call has
 * no parameters yet at compile(), so the optimizer is made (and its state created) once it is built.
 */
export function optimizerFor(spec: string | OptimizerLike): (params: Parameter[]) => OptimizerLike {
  if (spec instanceof Optimizer) return () => spec;
  const make = typeof spec === 'string' ? (BY_NAME as Record<string, (params: Parameter[]) => OptimizerLike>)[spec.toLowerCase()] : undefined;
  if (!make) throw new Error(`unknown optimizer '${String(spec)}'; valid: ${Object.keys(BY_NAME).join(', ')}, or an sn.optim instance`);
  return make;
}
