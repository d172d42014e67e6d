// Saving a Keras model: architecture, compile settings, weights, optimizer state and the epoch
// reached, in one checkpoint that loadModel turns back into a compiled model.

import { runtime } from '../context.js';
import * as optim from '../optim/index.js';
import type { LossName, MetricName } from '../layers/losses.js';
import type { OptimizerLike, OptimizerName } from '../layers/optimizers.js';
import { checkpointName, loadValue, saveValue, type CheckpointInfo, type SaveOptions } from '../checkpoint.js';
import { modelFromJSON } from './container.js';
import type { Compiled, LayersModel } from './training.js';

/** model.save: the optimizer's state (step counts included) is read on the device, as of the save. */
export function saveModel(model: LayersModel, compiled: Compiled | null, url: string, opts: SaveOptions): Promise<CheckpointInfo> {
  const name = checkpointName(url, 'model.save');
  const optimizerState = compiled?.optimizer.stateDict() ?? null;
  const extra = {
    architecture: model.toJSON(),
    compile: compileConfig(compiled),
    epoch: model.epoch,
    metadata: { generatedBy: 'shadenet', backend: runtime().backend, savedAt: new Date().toISOString() },
  };
  return saveValue(name, 'keras-model', { weights: model.stateDict(), optimizer: optimizerState }, extra, 'model.save', opts);
}

/**
 * compile()'s arguments as JSON, or null when they cannot be rebuilt by name (a custom loss, an
 * optimizer that is not an sn.optim class with one parameter group): such a model loads uncompiled.
 */
function compileConfig(c: Compiled | null) {
  if (!c || typeof c.args.loss !== 'string') return null;
  let optimizer: string | { className: string; config: Record<string, unknown> };
  if (typeof c.args.optimizer === 'string') optimizer = c.args.optimizer;
  else {
    const className = c.optimizer.constructor.name;
    if ((optim as Record<string, unknown>)[className] !== c.optimizer.constructor || c.optimizer.paramGroups.length !== 1) return null;
    const { params: _, initialLr: __, ...config } = c.optimizer.paramGroups[0];
    optimizer = { className, config: structuredClone(config) };
  }
  return { optimizer, loss: c.args.loss, metrics: [...(c.args.metrics ?? [])] };
}

/**
 * A model saved by model.save (or fit's autosave): same architecture and weights, compiled as it
 * was with its optimizer state restored, and `epoch` set, so fit(x, y, { epochs, initialEpoch:
 * model.epoch }) continues where training stopped.
 */
export async function loadModel(url: string): Promise<LayersModel> {
  const name = checkpointName(url, 'loadModel');
  const { info, meta, value } = await loadValue(name);
  if (info.kind !== 'keras-model') throw new Error(`loadModel: checkpoint "${name}" holds a ${info.kind}, not a Keras model; load it with sn.load`);
  const model = modelFromJSON(meta.architecture as ReturnType<LayersModel['toJSON']>);
  model.loadStateDict(value.weights);
  // Names as compile() was given them (checked again there: a checkpoint is input).
  const compile = meta.compile as { optimizer: OptimizerName | { className: string; config: Record<string, unknown> }; loss: LossName; metrics: MetricName[] } | null;
  if (compile) {
    const { optimizer, loss, metrics } = compile;
    const Opt = typeof optimizer === 'string' ? null : (optim as unknown as Record<string, new (p: unknown, o: unknown) => OptimizerLike>)[optimizer.className];
    model.compile({ optimizer: typeof optimizer === 'string' ? optimizer : new Opt!(model.parameters(), optimizer.config), loss, metrics });
    if (value.optimizer) model.optimizer!.loadStateDict(value.optimizer);
  }
  model.epoch = meta.epoch as number;
  return model;
}
