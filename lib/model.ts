// Keras-style Sequential model. compile() picks loss, metrics and optimizer;
// fit() records one training step as a program and hands it, with the data,
// to the worker, which runs the whole epoch loop: the page only receives
// progress callbacks.

import * as Comlink from 'comlink';
import { runtime } from './context.js';
import type { EvalSpec, FitEvents, ProgramSpec } from './protocol.js';
import { fmt, ShapeError } from './shape.js';
import { noGrad, cat, tensor, Tensor, type NestedArray } from './tensor.js';
import * as check from './validate.js';
import { Module } from './nn/module.js';
import { Dense } from './layers/core.js';
import { Layer, assignWeights, fmtLayerShape, type LayerShape, type WeightValue } from './layers/layer.js';
import { LOSSES, evalMetric, lossName, metricFn, type CustomLoss, type LossFn, type MetricFn, type Prediction } from './layers/losses.js';
import { layerFromConfig } from './layers/registry.js';
import { makeOptimizer, type OptimizerLike } from './layers/optimizers.js';
import { nextSeed } from './data/sampler.js';
import * as optim from './optim/index.js';
import { checkpointName, loadValue, saveValue, type CheckpointInfo, type SaveOptions } from './checkpoint.js';

/** x and y as Tensors, nested arrays, or typed arrays with a shape. */
export type Data = Tensor | NestedArray | { data: Float32Array | Int32Array | number[]; shape: number[] };

export interface Logs {
  [name: string]: number;
}

export interface Callback {
  onTrainBegin?(logs?: Logs): unknown;
  onEpochBegin?(epoch: number, logs?: Logs): unknown;
  onBatchEnd?(batch: number, logs: Logs): unknown;
  onEpochEnd?(epoch: number, logs: Logs): unknown;
  onTrainEnd?(logs?: Logs): unknown;
  /** Called with the model before training (earlyStopping uses it). */
  setModel?(model: SequentialModel): void;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  validationSplit?: number;
  validationData?: [Data, Data];
  initialEpoch?: number;
  callbacks?: Callback | Callback[];
  signal?: AbortSignal;
  verbose?: number;
  /** Autosave: model.save(url) after every `everyEpochs` epochs (counted from 0, as epoch numbers are; default 1). */
  checkpoint?: { url: string; everyEpochs?: number };
}

export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

export interface CompileArgs {
  optimizer: string | OptimizerLike;
  loss: string | CustomLoss;
  metrics?: string[];
}

function toTensor(v: Data, what: string): Tensor {
  if (v instanceof Tensor) return v;
  const isTyped = v && typeof v === 'object' && 'data' in v && 'shape' in v;
  if (!Array.isArray(v) && typeof v !== 'number' && !isTyped) throw new TypeError(`${what}: expected a Tensor, a nested array or { data, shape }`);
  try {
    return isTyped ? tensor(v.data, v.shape) : tensor(v as NestedArray);
  } catch (e) {
    // Name the argument, not the tensor() call it went through.
    throw e instanceof ShapeError ? new ShapeError(`${what}: ${e.message.replace(/^tensor: /, '')}`) : e;
  }
}

const ACCURACY_SPELLINGS: [string, string][] = [['accuracy', 'acc'], ['val_accuracy', 'val_acc']];

/** Logs under both spellings of accuracy, as Keras (accuracy) and TF.js (acc) users read them. */
function withAliases(logs: Logs): Logs {
  const out = { ...logs };
  for (const [a, b] of ACCURACY_SPELLINGS) {
    if (a in out && !(b in out)) out[b] = out[a];
    else if (b in out && !(a in out)) out[a] = out[b];
  }
  return out;
}

/** Holds handles reachable until this call, so their worker tensors outlive a worker-side loop. */
const keepAlive = (..._handles: unknown[]) => {};

export class SequentialModel extends Module {
  layers: Layer[] = [];
  private compiled: { loss: LossFn; lossKey: string | null; metrics: [string, MetricFn][]; optimizer: OptimizerLike; args: CompileArgs } | null = null;
  /** Set by a callback to end fit after the current epoch, as in Keras. */
  stopTraining = false;
  /** Epochs completed so far (fit's epoch numbers are absolute): pass it as fit's initialEpoch to resume. */
  epoch = 0;

  constructor(layers: Layer[] = [], readonly modelName = 'sequential') {
    super();
    for (const l of layers) this.add(l);
  }

  add(layer: Layer) {
    if (!(layer instanceof Layer)) throw new TypeError('add: expected a layer from sn.layers');
    if (this.layers.length === 0 && !layer.inputShape) {
      throw new Error(`the first layer ('${layer.name}') needs an inputShape, e.g. sn.layers.dense({ units: 10, inputShape: [784] })`);
    }
    if (this.compiled) throw new Error('add: layers cannot be added after compile()');
    if ((layer.getConfig() as { returnState?: boolean }).returnState) {
      throw new Error(`add: '${layer.name}' has returnState, so it has several outputs; a sequential model passes one on. Use the functional API: sn.model({ inputs, outputs })`);
    }
    // Weights exist as soon as the layer is added, so parameters() is complete before compile().
    layer.build(this.layers.length ? this.layers[this.layers.length - 1].outputShape! : layer.inputShape!);
    this.layers.push(layer);
  }

  /** Every layer's weights in Keras's layout: trainable ones layer by layer, then the non-trainable ones (TF.js's order). */
  private kerasWeights() {
    const all = this.layers.flatMap((l) => l.kerasWeights());
    return [...all.filter((w) => w.trainable), ...all.filter((w) => !w.trainable)];
  }

  getWeights(trainableOnly = false): Tensor[] {
    return noGrad(() => this.kerasWeights()
      .filter((w) => w.trainable || !trainableOnly)
      .map((w) => (w.toKeras ? w.toKeras(w.value) : w.value).clone()));
  }

  setWeights(values: WeightValue[]) {
    assignWeights(this.kerasWeights(), values, `model '${this.modelName}'`);
  }

  get inputShape(): LayerShape {
    if (!this.layers.length) throw new Error('the model has no layers');
    return this.layers[0].inputShape!;
  }

  get outputShape(): LayerShape {
    return this.layers[this.layers.length - 1].outputShape!;
  }

  /** Runs the layers, passing masks along; keeps the last dense layer's logits for the losses. */
  private run(x: Tensor, training: boolean): Prediction {
    this.checkInput(x, 'x');
    let h = x;
    let mask: Tensor | null = null;
    const last = this.layers[this.layers.length - 1];
    for (const layer of this.layers) {
      if (layer === last && last instanceof Dense) {
        const logits = last.logits(h);
        return { pred: last.activation(logits), logits, activation: last.activationName };
      }
      const next = layer.call(h, { training, mask });
      mask = layer.computeMask(h, mask);
      h = next;
    }
    return { pred: h, logits: null, activation: 'linear' };
  }

  forward(x: Tensor): Tensor {
    return this.run(x, this.training).pred;
  }

  private checkInput(x: Tensor, what: string) {
    const want = this.inputShape;
    const got = x.shape.slice(1);
    if (got.length !== want.length || want.some((d, i) => d !== null && d !== got[i])) {
      throw new ShapeError(`layer '${this.layers[0].name}' expects ${what} of shape [batch, ${want.map((d) => d ?? 'null').join(', ')}] but got ${fmt(x.shape)}`);
    }
  }

  private checkTarget(y: Tensor, n: number) {
    if (y.shape[0] !== n) throw new ShapeError(`x has ${n} samples but y has ${y.shape[0]} (shape ${fmt(y.shape)})`);
    const out = this.outputShape;
    const last = this.layers[this.layers.length - 1];
    const got = y.shape.slice(1);
    const sparse = this.compiled?.lossKey === 'sparseCategoricalCrossentropy';
    const ok = sparse ? got.length === 0 || (got.length === 1 && got[0] === 1) : got.length === out.length && out.every((d, i) => d === null || d === got[i]);
    if (!ok) {
      const want = sparse ? '[batch] or [batch, 1] of class indices' : `[batch, ${out.map((d) => d ?? 'null').join(', ')}]`;
      throw new ShapeError(`layer '${last.name}' outputs shape [batch, ${out.map((d) => d ?? 'null').join(', ')}], so y should be ${want}, but got ${fmt(y.shape)}`);
    }
  }

  compile(args: CompileArgs) {
    if (!this.layers.length) throw new Error('compile: the model has no layers');
    const lossKey = typeof args.loss === 'function' ? null : lossName(args.loss);
    const custom = typeof args.loss === 'function' ? args.loss : null;
    const loss: LossFn = custom ? (y, p) => { const l = custom(y, p.pred); return l.size === 1 ? l.reshape([]) : l.mean(); } : LOSSES[lossKey!];
    const units = this.outputShape[this.outputShape.length - 1] ?? 1;
    const metrics = (args.metrics ?? []).map((m): [string, MetricFn] => [m, metricFn(m, lossKey, units)]);
    this.compiled = { loss, lossKey, metrics, optimizer: makeOptimizer(args.optimizer, this.parameters()), args };
  }

  /** The compile() settings; throws if the model was not compiled. */
  private requireCompiled(): NonNullable<SequentialModel['compiled']> {
    if (!this.compiled) throw new Error('the model must be compiled before training or evaluating: call model.compile({ optimizer, loss })');
    return this.compiled;
  }

  /** A placeholder the worker binds to each batch. */
  private placeholder(like: Tensor, batch: number) {
    return new Tensor(runtime().newId(), [batch, ...like.shape.slice(1)], like.dtype, false);
  }

  private outputsOf(y: Tensor, p: Prediction, c: NonNullable<SequentialModel['compiled']>) {
    const loss = c.loss(y, p);
    return { loss, metrics: c.metrics.map(([, fn]) => evalMetric(fn, y, p)) };
  }

  /** One training step (zeroGrad, forward, loss, backward, optimizer step) or one evaluation; returns the loss and metrics. */
  private step(x: Tensor, y: Tensor, train: boolean) {
    const c = this.requireCompiled();
    if (!train) {
      return noGrad(() => {
        this.eval();
        return this.outputsOf(y, this.run(x, false), c);
      });
    }
    c.optimizer.zeroGrad();
    this.train();
    const out = this.outputsOf(y, this.run(x, true), c);
    out.loss.backward();
    c.optimizer.step();
    return out;
  }

  /** Records a step for batch size b as a program the worker replays, with placeholders for the batch. */
  private program(x: Tensor, y: Tensor, b: number, train: boolean): ProgramSpec {
    const xb = this.placeholder(x, b);
    const yb = this.placeholder(y, b);
    let outputs: number[] = [];
    const commands = runtime().capture(() => {
      const { loss, metrics } = this.step(xb, yb, train);
      outputs = [loss.id, ...metrics.map((m) => m.id)];
    });
    // Recording ran the optimizer's step once on the page; the worker counts the real steps.
    if (train) this.requireCompiled().optimizer.advanceSteps(-1);
    return { commands, inputs: [xb.id, yb.id], outputs };
  }

  /** Programs for every batch size the data produces: the full size and the remainder. */
  private programs(x: Tensor, y: Tensor, batchSize: number, train: boolean) {
    const n = x.shape[0];
    const sizes = new Set([Math.min(batchSize, n), n % batchSize].filter((s) => s > 0));
    return Object.fromEntries([...sizes].map((b) => [b, this.program(x, y, b, train)]));
  }

  private prepare(xd: Data, yd: Data) {
    this.requireCompiled();
    const x = toTensor(xd, 'x');
    const y = toTensor(yd, 'y');
    this.checkInput(x, 'x');
    this.checkTarget(y, x.shape[0]);
    return { x, y };
  }

  async fit(xd: Data, yd: Data, opts: FitOptions = {}): Promise<History> {
    const c = this.requireCompiled();
    opts = check.options(opts, 'fit: options');
    let { x, y } = this.prepare(xd, yd);
    const batchSize = check.integer(opts.batchSize ?? 32, 'fit: batchSize', 1);
    const epochs = check.integer(opts.epochs ?? 1, 'fit: epochs', 0);
    let validation: EvalSpec | undefined;
    let validationHandles: Tensor[] = [];
    if (opts.validationData) {
      const v = this.prepare(opts.validationData[0], opts.validationData[1]);
      validationHandles = [v.x, v.y];
      validation = { x: [v.x.id], y: [v.y.id], batchSize, programs: this.programs(v.x, v.y, batchSize, false) };
    } else if (opts.validationSplit) {
      const split = opts.validationSplit;
      if (typeof split !== 'number' || !(split > 0 && split < 1)) throw new Error(`fit: validationSplit must be in (0, 1), got ${split}`);
      // Keras takes the last fraction of the samples, before any shuffling.
      const nTrain = Math.floor(x.shape[0] * (1 - split));
      const vx = x.slice(0, nTrain);
      const vy = y.slice(0, nTrain);
      x = x.slice(0, 0, nTrain);
      y = y.slice(0, 0, nTrain);
      validationHandles = [vx, vy];
      validation = { x: [vx.id], y: [vy.id], batchSize, programs: this.programs(vx, vy, batchSize, false) };
    }
    if (x.shape[0] === 0) throw new Error('fit: no training samples');
    const initialEpoch = check.integer(opts.initialEpoch ?? 0, 'fit: initialEpoch', 0);
    const autosave = opts.checkpoint;
    if (autosave) checkpointName(autosave.url, 'fit: checkpoint.url');
    const saveEvery = autosave?.everyEpochs ?? 1;
    if (!Number.isInteger(saveEvery) || saveEvery < 1) throw new Error(`fit: checkpoint.everyEpochs must be a positive integer, got ${saveEvery}`);
    const stepsPerEpoch = Math.ceil(x.shape[0] / batchSize);
    c.optimizer.materializeState();
    const programs = this.programs(x, y, batchSize, true);
    const callbacks = opts.callbacks ? (Array.isArray(opts.callbacks) ? opts.callbacks : [opts.callbacks]) : [];
    const outputNames = ['loss', ...c.metrics.map(([name]) => name)];
    const history: History = { epoch: [], history: {} };
    this.stopTraining = false;
    for (const cb of callbacks) cb.setModel?.(this);
    const rt = runtime();
    // Work a callback queued (earlyStopping's weight snapshot) must run before the worker resumes
    // training. Callback replies travel on their own channel, unordered with the op stream, so wait
    // until the worker has taken that work.
    const invoke = async (fn: (cb: Callback) => unknown) => {
      const before = rt.stats.commands + rt.pendingCount;
      for (const cb of callbacks) await fn(cb);
      if (rt.stats.commands + rt.pendingCount !== before) await rt.sync();
    };
    const events: FitEvents = {
      onTrainBegin: () => invoke((cb) => cb.onTrainBegin?.({})),
      onEpochBegin: (e) => invoke((cb) => cb.onEpochBegin?.(e, {})),
      onBatchEnd: (b, logs) => invoke((cb) => cb.onBatchEnd?.(b, withAliases(logs))),
      onEpochEnd: async (e, workerLogs) => {
        const logs = withAliases(workerLogs);
        history.epoch.push(e);
        for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
        this.epoch = e + 1;
        await invoke((cb) => cb.onEpochEnd?.(e, logs));
        // The worker waits for this reply, so the weights saved are those at the end of epoch e.
        if (autosave && (e + 1) % saveEvery === 0) await this.saveAt(autosave.url, (e + 1 - initialEpoch) * stepsPerEpoch);
        return this.stopTraining;
      },
      onTrainEnd: () => invoke((cb) => cb.onTrainEnd?.({})),
    };
    if (opts.signal?.aborted) return history;
    const abort = () => rt.engine.stopFit();
    opts.signal?.addEventListener('abort', abort);
    try {
      const steps = await rt.call((e) => e.fit({
        x: [x.id], y: [y.id], batchSize, programs,
        epochs, initialEpoch, shuffle: opts.shuffle ?? true,
        seed: nextSeed(), outputNames,
        batchEvents: callbacks.some((cb) => cb.onBatchEnd),
        validation,
      }, Comlink.proxy(events)));
      c.optimizer.advanceSteps(steps);
    } finally {
      // The worker uses these by id only: keep the page handles (and so the worker copies) alive until it is done.
      keepAlive(x, y, validationHandles);
      opts.signal?.removeEventListener('abort', abort);
      // Gradients lived inside the worker's step program.
      for (const p of this.parameters()) p.grad = null;
    }
    return history;
  }

  async evaluate(xd: Data, yd: Data, opts: { batchSize?: number } = {}): Promise<Logs> {
    const c = this.requireCompiled();
    const batchSize = check.integer(check.options(opts, 'evaluate: options').batchSize ?? 32, 'evaluate: batchSize', 1);
    const { x, y } = this.prepare(xd, yd);
    const values = await runtime().call((e) => e.evaluate({ x: [x.id], y: [y.id], batchSize, programs: this.programs(x, y, batchSize, false) }));
    keepAlive(x, y);
    return withAliases(Object.fromEntries(['loss', ...c.metrics.map(([n]) => n)].map((k, i) => [k, values[i]])));
  }

  /** Model output for x, computed in batches in the worker. */
  predict(xd: Data, opts: { batchSize?: number } = {}): Tensor {
    const batchSize = check.integer(check.options(opts, 'predict: options').batchSize ?? 32, 'predict: batchSize', 1);
    const x = toTensor(xd, 'x');
    this.checkInput(x, 'x');
    const n = x.shape[0];
    return noGrad(() => {
      this.eval();
      const parts: Tensor[] = [];
      for (let s = 0; s < n; s += batchSize) parts.push(this.run(x.slice(0, s, s + batchSize), false).pred);
      return parts.length === 1 ? parts[0] : cat(parts, 0);
    });
  }

  predictOnBatch(xd: Data): Tensor {
    return this.predict(xd, { batchSize: Number.MAX_SAFE_INTEGER });
  }

  /** One optimizer step on one batch; resolves to the loss (and metrics) before the step. */
  async trainOnBatch(xd: Data, yd: Data): Promise<Logs> {
    const c = this.requireCompiled();
    const { x, y } = this.prepare(xd, yd);
    const { loss, metrics } = this.step(x, y, true);
    const values = await Promise.all([loss, ...metrics].map((t) => t.item()));
    return withAliases(Object.fromEntries(['loss', ...c.metrics.map(([n]) => n)].map((k, i) => [k, values[i]])));
  }

  summary(): string {
    const rows = this.layers.map((l) => [`${l.name} (${l.className})`, fmtLayerShape(l.outputShape), String(l.countParams())]);
    const widths = [33, 26, 10];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('').trimEnd();
    const total = this.layers.reduce((s, l) => s + l.countParams(), 0);
    const bar = '_'.repeat(69);
    return [
      `Model: "${this.modelName}"`, bar,
      line(['Layer (type)', 'Output Shape', 'Param #']),
      '='.repeat(69),
      ...rows.flatMap((r, i) => [line(r), i < rows.length - 1 ? bar : '='.repeat(69)]),
      `Total params: ${total}`, `Trainable params: ${total}`, 'Non-trainable params: 0', bar,
    ].join('\n');
  }

  toJSON() {
    return {
      className: 'Sequential',
      config: { name: this.modelName, layers: this.layers.map((l) => ({ className: l.className, config: { ...l.getConfig(), name: l.name } })) },
    };
  }

  override toString() {
    return this.summary();
  }

  /** The optimizer compile() made or was given (null before compile). */
  get optimizer(): OptimizerLike | null {
    return this.compiled?.optimizer ?? null;
  }

  /**
   * Saves architecture, compile settings, weights, optimizer state, the epoch
   * reached and metadata under 'indexeddb://name'; sn.loadModel(url) restores
   * them. Atomic: a failed save leaves the previous checkpoint as it was.
   */
  async save(url: string, opts: SaveOptions = {}): Promise<CheckpointInfo> {
    return this.saveAt(url, 0, opts);
  }

  /**
   * Saves with the optimizer's step counts moved on by `stepsInFlight`: during fit the worker runs
   * the steps and the page adds them up only when fit returns.
   */
  private saveAt(url: string, stepsInFlight: number, opts: SaveOptions = {}): Promise<CheckpointInfo> {
    const name = checkpointName(url, 'model.save');
    const opt = this.compiled?.optimizer;
    let optimizerState = null;
    if (opt) {
      opt.advanceSteps(stepsInFlight);
      try {
        optimizerState = opt.stateDict();
      } finally {
        opt.advanceSteps(-stepsInFlight);
      }
    }
    const extra = {
      architecture: this.toJSON(),
      compile: this.compileConfig(),
      epoch: this.epoch,
      metadata: { generatedBy: 'shadenet', backend: runtime().backend, savedAt: new Date().toISOString() },
    };
    return saveValue(name, 'keras-model', { weights: this.stateDict(), optimizer: optimizerState }, extra, 'model.save', opts);
  }

  /**
   * compile()'s arguments as JSON, or null when they cannot be rebuilt by name (a custom loss, an
   * optimizer that is not an sn.optim class with one parameter group): such a model loads uncompiled.
   */
  private compileConfig() {
    const c = this.compiled;
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
}

/** sn.sequential([layers], { name }) or TF.js's sn.sequential({ layers, name }). */
export function sequential(layers: Layer[] | { layers?: Layer[]; name?: string } = [], { name }: { name?: string } = {}) {
  if (Array.isArray(layers)) return new SequentialModel(layers, name);
  if (layers && typeof layers === 'object' && !(layers instanceof Layer)) return new SequentialModel(layers.layers ?? [], layers.name ?? name);
  throw new TypeError('sequential: expected an array of layers or { layers: [...] }');
}

/**
 * A model saved by model.save (or fit's autosave): same architecture and weights, compiled as it
 * was with its optimizer state restored, and `epoch` set, so fit(x, y, { epochs, initialEpoch:
 * model.epoch }) continues where training stopped.
 */
export async function loadModel(url: string): Promise<SequentialModel> {
  const name = checkpointName(url, 'loadModel');
  const { info, meta, value } = await loadValue(name);
  if (info.kind !== 'keras-model') throw new Error(`loadModel: checkpoint "${name}" holds a ${info.kind}, not a Keras model; load it with sn.load`);
  const model = modelFromJSON(meta.architecture as ReturnType<SequentialModel['toJSON']>);
  model.loadStateDict(value.weights);
  const compile = meta.compile as { optimizer: string | { className: string; config: Record<string, unknown> }; loss: string; metrics: string[] } | null;
  if (compile) {
    const { optimizer, loss, metrics } = compile;
    const Opt = typeof optimizer === 'string' ? null : (optim as unknown as Record<string, new (p: unknown, o: unknown) => OptimizerLike>)[optimizer.className];
    model.compile({ optimizer: typeof optimizer === 'string' ? optimizer : new Opt!(model.parameters(), optimizer.config), loss, metrics });
    if (value.optimizer) model.optimizer!.loadStateDict(value.optimizer);
  }
  model.epoch = meta.epoch as number;
  return model;
}

/** Rebuilds an architecture from model.toJSON() (fresh weights). */
export function modelFromJSON(json: ReturnType<SequentialModel['toJSON']> | string): SequentialModel {
  const spec = typeof json === 'string' ? JSON.parse(json) : json;
  if (spec?.className !== 'Sequential') throw new Error(`modelFromJSON: expected className 'Sequential', got '${spec?.className}'`);
  const layers: unknown = spec.config?.layers;
  if (!Array.isArray(layers)) throw new TypeError(`modelFromJSON: config.layers must be a list of layer specs, got ${check.describe(layers)}`);
  return new SequentialModel(layers.map((l, i) => {
    if (typeof l?.className !== 'string' || !l.config || typeof l.config !== 'object') {
      throw new TypeError(`modelFromJSON: layer ${i} must be { className: string, config: object }, got ${check.describe(l)}`);
    }
    return layerFromConfig(l.className, l.config);
  }), spec.config.name);
}
