// shadenet: the public surface. Everything here runs on the page and only
// records work; the engine in the worker computes.

import { runtime } from './context.js';
import type { MemoryInfo } from './protocol.js';
import { seedShuffling } from './data/sampler.js';

export { init, backend, backendInfo } from './context.js';
/** @internal For fault-injection tests: the running engine's page side. */
export { runtime as _runtime } from './context.js';
export { Tensor, tensor, zeros, ones, full, zerosLike, onesLike, randn, rand, arange, linspace, cat, stack, where, noGrad, tidy } from './tensor.js';
export type { TensorLike, NestedArray, TensorOptions, DataAccessor } from './tensor.js';
export { ShapeError } from './shape.js';
export type { DType } from './shape.js';
export type { BackendName, EngineInfo, MemoryInfo } from './protocol.js';

/** Makes randn, rand, dropout and shuffling reproducible on both backends. */
export function manualSeed(seed: number) {
  if (!Number.isInteger(seed)) throw new TypeError(`manualSeed: seed must be an integer, got ${seed}`);
  runtime().enqueue(['seed', seed]);
  seedShuffling(seed);
}

/** Waits until the worker has run everything queued so far; rethrows a failure from it. */
export const sync = (): Promise<void> => runtime().sync();

/** The worker's live tensors and memory. */
export const memory = (): Promise<MemoryInfo> => runtime().memory();

/** Op-stream counters: Comlink messages, commands, and frees of garbage-collected handles sent so far. */
export const stats = () => ({ ...runtime().stats });

export * as nn from './nn/index.js';
export * as autograd from './autograd.js';
export * as optim from './optim/index.js';
export * as data from './data/index.js';
export * as layers from './layers/index.js';
export { initializers } from './layers/initializers.js';
export { input, model, FunctionalModel } from './functional.js';
export { sequential, modelFromJSON, loadModel, SequentialModel, LayersModel, type History, type FitOptions, type Callback, type Logs, type CompileArgs } from './model.js';
export * as callbacks from './layers/callbacks.js';
export { save, load, checkpoints, safetensors, type CheckpointInfo, type SaveOptions, type Saved } from './checkpoint.js';
export type { LossName, MetricName } from './layers/losses.js';
export type { OptimizerName } from './layers/optimizers.js';
export type { ActivationName } from './layers/core.js';
