// Keras training on top of the container: compile() picks loss, metrics and optimizer; fit()
// records one training step as a program and hands it, with the data, to the worker, which runs
// the whole epoch loop: the page only receives progress callbacks (the bridge below).

import * as Comlink from 'comlink';
import { runtime } from '../context.js';
import type { EvalSpec, FitEvents, ProgramSpec } from '../protocol.js';
import { fmt, ShapeError } from '../shape.js';
import { noGrad, cat, tensor, Tensor, type NestedArray } from '../tensor.js';
import * as check from '../validate.js';
import { LOSSES, evalMetric, lossName, metricFn, type CustomLoss, type LossFn, type LossName, type MetricFn, type MetricName, type Prediction } from '../layers/losses.js';
import { optimizerFor, type OptimizerLike, type OptimizerName } from '../layers/optimizers.js';
import { nextSeed } from '../data/sampler.js';
import { checkpointName, type CheckpointInfo, type SaveOptions } from '../checkpoint.js';
import { Container } from './container.js';
import { saveModel } from './saving.js';

/**
 * What fit, evaluate and predict take as x and y: a Tensor, nested arrays of numbers
 * (`[[0, 1], [1, 0]]`), or a flat typed array with its shape (`{ data: Float32Array, shape: [n, 784] }`;
 * an Int32Array makes int32 labels, as sparseCategoricalCrossentropy wants). The first axis is the sample.
 */
export type Data = Tensor | NestedArray | { data: Float32Array | Int32Array | number[]; shape: number[] };

/** Loss and metrics by name (`loss`, `accuracy`, ...; `val_loss`, `val_accuracy` with validation data). */
export interface Logs {
  [name: string]: number;
}

/**
 * fit's progress callbacks, as in Keras. They run on the page; the worker waits for a
 * callback's returned promise before it goes on, so an async callback can pause training.
 */
export interface Callback {
  onTrainBegin?(logs?: Logs): unknown;
  onEpochBegin?(epoch: number, logs?: Logs): unknown;
  /**
   * After a batch, with the running means of loss and metrics over the epoch so far. Throttled:
   * called at most every 100 ms (each call costs the worker a small readback), so `batch` skips
   * numbers; the last batch of an epoch is not guaranteed a call (onEpochEnd follows it).
   */
  onBatchEnd?(batch: number, logs: Logs): unknown;
  /** After each epoch with its mean loss and metrics (and validation ones); set `model.stopTraining = true` to stop. */
  onEpochEnd?(epoch: number, logs: Logs): unknown;
  onTrainEnd?(logs?: Logs): unknown;
  /** Called with the model before training (earlyStopping uses it). */
  setModel?(model: LayersModel): void;
  /** Set by sn.callbacks.terminateOnNaN(): stop on a non-finite loss even where fit's option turned it off. */
  terminateOnNaN?: boolean;
}

/** fit's options; the names and defaults are Keras's. */
export interface FitOptions {
  /** The epoch to stop before (default 1); with initialEpoch, the number of the last epoch plus one. */
  epochs?: number;
  /** Samples per step (default 32); the last batch of an epoch may be smaller. */
  batchSize?: number;
  /** Shuffle the training samples every epoch (default true; `sn.manualSeed` makes it reproducible). */
  shuffle?: boolean;
  /** Hold out this fraction of the samples, the last ones before shuffling, to validate after each epoch. */
  validationSplit?: number;
  /** [x, y] to validate on after each epoch (instead of validationSplit). */
  validationData?: [Data, Data];
  /** The epoch to start counting from, to resume a saved model (model.epoch). */
  initialEpoch?: number;
  callbacks?: Callback | Callback[];
  /** Aborting stops training after the current batch; fit resolves with the history so far. */
  signal?: AbortSignal;
  /** Accepted for Keras compatibility; fit prints nothing. */
  verbose?: number;
  /** Stop with an error naming epoch and batch once the loss is NaN or infinite (default true; Keras' TerminateOnNaN). */
  terminateOnNaN?: boolean;
  /** Autosave: model.save(url) after every `everyEpochs` epochs (counted from 0, as epoch numbers are; default 1). */
  checkpoint?: { url: string; everyEpochs?: number };
}

export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

export interface CompileArgs {
  optimizer: OptimizerName | OptimizerLike;
  loss: LossName | CustomLoss;
  metrics?: MetricName[];
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

/** Logs under both spellings of accuracy, as Keras (accuracy) and TF.js (acc) users read them. */
function withAliases(logs: Logs): Logs {
  const out = { ...logs };
  for (const key of Object.keys(logs)) {
    // accuracy, val_accuracy, out1_accuracy, val_out1_accuracy, and the same with acc.
    const twin = /(^|_)accuracy$/.test(key) ? key.replace(/accuracy$/, 'acc') : /(^|_)acc$/.test(key) ? key.replace(/acc$/, 'accuracy') : null;
    if (twin && !(twin in out)) out[twin] = out[key];
  }
  return out;
}

/** Holds handles reachable until this call, so their worker tensors outlive a worker-side loop. */
const keepAlive = (..._handles: unknown[]) => {};

/**
 * Resolves in a later task, so the page renders and handles input in between. A message on a
 * channel rather than a timer: browsers throttle timers in background tabs to one a second.
 */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** A model's inputs or targets as handed to fit/evaluate/predict: one Data per input (or output). */
export type DataList = Data | Data[];

/** What compile() settled per model output. */
interface OutputSpec {
  loss: LossFn;
  lossKey: string | null;
  metrics: [string, MetricFn][];
}

/** @internal What compile() settled. */
export interface Compiled {
  outputs: OutputSpec[];
  optimizer: OptimizerLike;
  args: CompileArgs;
}

/**
 * What Sequential and functional models share: compile, fit (recorded as a program the worker
 * replays), evaluate, predict, trainOnBatch, weights, summary and save. Data travel as lists, one
 * tensor per model input and per model output.
 */
export abstract class LayersModel extends Container {
  /** Settles compile()'s checked arguments once the model is built (at once if it is); null before compile(). */
  private settleCompile: (() => Compiled) | null = null;
  private settled: Compiled | null = null;
  /** Set by a callback to end fit after the current epoch, as in Keras. */
  stopTraining = false;
  private fitting = false;
  /** Epochs completed so far (fit's epoch numbers are absolute): pass it as fit's initialEpoch to resume. */
  epoch = 0;

  private checkTarget(y: Tensor, i: number, n: number) {
    const what = this.outputShapes.length > 1 ? `y[${i}]` : 'y';
    if (y.shape[0] !== n) throw new ShapeError(`x has ${n} samples but ${what} has ${y.shape[0]} (shape ${fmt(y.shape)})`);
    const out = this.outputShapes[i];
    const got = y.shape.slice(1);
    const sparse = this.compiled?.outputs[i].lossKey === 'sparseCategoricalCrossentropy';
    const ok = sparse ? got.length === 0 || (got.length === 1 && got[0] === 1) : got.length === out.length && out.every((d, k) => d === null || d === got[k]);
    if (!ok) {
      const want = sparse ? '[batch] or [batch, 1] of class indices' : `[batch, ${out.map((d) => d ?? 'null').join(', ')}]`;
      throw new ShapeError(`output '${this.outputNames()[i]}' has shape [batch, ${out.map((d) => d ?? 'null').join(', ')}], so ${what} should be ${want}, but got ${fmt(y.shape)}`);
    }
  }

  /**
   * What compile() settled; null before compile() and, for a model built at its first call, until
   * it is built: the optimizer needs the parameters, and accuracy the output's units.
   */
  protected get compiled(): Compiled | null {
    if (!this.settled && this.settleCompile && this.built) this.settled = this.settleCompile();
    return this.settled;
  }

  /** Whether compile() was called (it may not be settled yet). */
  protected get isCompiled(): boolean {
    return this.settleCompile !== null;
  }

  /** loss and metrics: one for every output, a list (one per output) or an object keyed by output name. */
  compile(args: CompileArgs) {
    const names = this.outputNames();
    const perOutput = <T>(v: T | T[] | Record<string, T>, what: string): T[] => {
      if (Array.isArray(v) && what === 'loss') {
        if (v.length !== names.length) throw new Error(`compile: ${v.length} losses for ${names.length} outputs (${names.join(', ')})`);
        return v;
      }
      if (v && typeof v === 'object' && !Array.isArray(v) && typeof v !== 'function') {
        const rec = v as Record<string, T>;
        const unknown = Object.keys(rec).filter((k) => !names.includes(k));
        if (unknown.length) throw new Error(`compile: ${what} names ${unknown.join(', ')}, which are not outputs; outputs: ${names.join(', ')}`);
        return names.map((n) => rec[n]);
      }
      return names.map(() => v as T);
    };
    const losses = perOutput(args.loss as string | CustomLoss, 'loss');
    const metricLists = perOutput((args.metrics ?? []) as string[] | string[][] | Record<string, string[]>, 'metrics') as unknown as (string[] | undefined)[];
    const specs = losses.map((l, i) => {
      if (l === undefined) throw new Error(`compile: no loss for output '${names[i]}'`);
      const lossKey = typeof l === 'function' ? null : lossName(l);
      const loss: LossFn = typeof l === 'function' ? (y, p) => { const v = l(y, p.pred); return v.size === 1 ? v.reshape([]) : v.mean(); } : LOSSES[lossKey!];
      const metrics = metricLists[i] ?? [];
      // An unknown metric name fails here; which accuracy a name means waits for the output's units.
      for (const m of metrics) metricFn(m, lossKey, 1);
      return { loss, lossKey, metrics };
    });
    const makeOptimizer = optimizerFor(args.optimizer);
    const settle = (): Compiled => ({
      outputs: specs.map(({ loss, lossKey, metrics }, i): OutputSpec => {
        const shape = this.outputShapes[i];
        const units = shape[shape.length - 1] ?? 1;
        return { loss, lossKey, metrics: metrics.map((m): [string, MetricFn] => [m, metricFn(m, lossKey, units)]) };
      }),
      optimizer: makeOptimizer(this.parameters()),
      args,
    });
    const settled = this.built ? settle() : null;
    this.settleCompile = settle;
    this.settled = settled;
  }

  /** Throws unless compile() was called. */
  private checkCompileCalled() {
    if (!this.settleCompile) throw new Error('the model must be compiled before training or evaluating: call model.compile({ optimizer, loss })');
  }

  /** The compile() settings; throws if the model was not compiled or is not built yet. */
  protected requireCompiled(): Compiled {
    this.checkCompileCalled();
    this.requireBuilt('compile');
    return this.compiled!;
  }

  /** Log names of the step's outputs: loss, then each output's loss when there are several, then the metrics. */
  private logNames(c: Compiled) {
    const names = this.outputNames();
    const multi = c.outputs.length > 1;
    return [
      'loss',
      ...(multi ? names.map((n) => `${n}_loss`) : []),
      ...c.outputs.flatMap((o, i) => o.metrics.map(([m]) => (multi ? `${names[i]}_${m}` : m))),
    ];
  }

  /** A placeholder the worker binds to each batch. */
  private placeholder(like: Tensor, batch: number) {
    return new Tensor(runtime().newId(), [batch, ...like.shape.slice(1)], like.dtype, false);
  }

  private outputsOf(ys: Tensor[], ps: Prediction[], c: Compiled) {
    const losses = c.outputs.map((o, i) => o.loss(ys[i], ps[i]));
    const loss = losses.length === 1 ? losses[0] : losses.reduce((a, b) => a.add(b));
    const metrics = c.outputs.flatMap((o, i) => o.metrics.map(([, fn]) => evalMetric(fn, ys[i], ps[i])));
    return { loss, metrics: [...(losses.length > 1 ? losses.map((l) => l.detach()) : []), ...metrics] };
  }

  /** One training step (zeroGrad, forward, loss, backward, optimizer step) or one evaluation; returns the loss and metrics. */
  private step(xs: Tensor[], ys: Tensor[], train: boolean) {
    const c = this.requireCompiled();
    if (!train) {
      return noGrad(() => {
        this.eval();
        return this.outputsOf(ys, this.runChecked(xs, false), c);
      });
    }
    c.optimizer.zeroGrad();
    this.train();
    const out = this.outputsOf(ys, this.runChecked(xs, true), c);
    out.loss.backward();
    c.optimizer.step();
    return out;
  }

  /** Records a step for batch size b as a program the worker replays, with placeholders for the batch. */
  private program(xs: Tensor[], ys: Tensor[], b: number, train: boolean): ProgramSpec {
    const xb = xs.map((x) => this.placeholder(x, b));
    const yb = ys.map((y) => this.placeholder(y, b));
    let outputs: number[] = [];
    const commands = runtime().capture(() => {
      const { loss, metrics } = this.step(xb, yb, train);
      outputs = [loss.id, ...metrics.map((m) => m.id)];
    });
    return { commands, inputs: [...xb, ...yb].map((t) => t.id), outputs };
  }

  /** Programs for every batch size the data produces: the full size and the remainder. */
  private programs(xs: Tensor[], ys: Tensor[], batchSize: number, train: boolean) {
    const n = xs[0].shape[0];
    const sizes = new Set([Math.min(batchSize, n), n % batchSize].filter((s) => s > 0));
    return Object.fromEntries([...sizes].map((b) => [b, this.program(xs, ys, b, train)]));
  }

  /** x (or y) as one tensor per model input (or output). */
  private tensors(d: DataList, count: number, what: string): Tensor[] {
    const list = count > 1 || (Array.isArray(d) && d.length === 1 && d[0] instanceof Tensor);
    if (!list) return [toTensor(d as Data, what)];
    if (!Array.isArray(d) || d.length !== count) throw new TypeError(`${what}: the model has ${count} ${what === 'x' ? 'inputs' : 'outputs'}, so pass a list of ${count}`);
    const ts = d.map((v, i) => toTensor(v as Data, `${what}[${i}]`));
    const n = ts[0].shape[0];
    ts.forEach((t, i) => { if (t.shape[0] !== n) throw new ShapeError(`${what}[0] has ${n} samples but ${what}[${i}] has ${t.shape[0]} (shape ${fmt(t.shape)})`); });
    return ts;
  }

  /** x as one tensor per input; builds the model from them if this is its first call. */
  private inputs(xd: DataList) {
    const xs = this.tensors(xd, this.inputCount(), 'x');
    this.buildOnFirstCall(xs);
    xs.forEach((x, i) => this.checkInput(x, i));
    return xs;
  }

  private prepare(xd: DataList, yd: DataList) {
    this.checkCompileCalled();
    const xs = this.inputs(xd);
    const ys = this.tensors(yd, this.outputShapes.length, 'y');
    ys.forEach((y, i) => this.checkTarget(y, i, xs[0].shape[0]));
    return { xs, ys };
  }

  async fit(xd: DataList, yd: DataList, opts: FitOptions = {}): Promise<History> {
    if (this.fitting) throw new Error('fit: this model is already fitting; await its running fit first (other models may fit at the same time)');
    // Converting the data and recording the step run in a task of their own: appended to the
    // caller's (which has often just copied the training data in sn.tensor), they made one long
    // page stall, and a busy machine stretches every such task.
    this.fitting = true;
    try {
      await nextTask();
    } finally {
      this.fitting = false;
    }
    return this.fitInThisTask(xd, yd, opts);
  }

  private async fitInThisTask(xd: DataList, yd: DataList, opts: FitOptions): Promise<History> {
    this.checkCompileCalled();
    opts = check.options(opts, 'fit: options');
    if (this.fitting) throw new Error('fit: this model is already fitting; await its running fit first (other models may fit at the same time)');
    let { xs, ys } = this.prepare(xd, yd);
    const c = this.requireCompiled();
    const batchSize = check.integer(opts.batchSize ?? 32, 'fit: batchSize', 1);
    const epochs = check.integer(opts.epochs ?? 1, 'fit: epochs', 0);
    let validation: EvalSpec | undefined;
    let validationHandles: Tensor[] = [];
    if (opts.validationData) {
      const v = this.prepare(opts.validationData[0], opts.validationData[1]);
      validationHandles = [...v.xs, ...v.ys];
      validation = { x: v.xs.map((t) => t.id), y: v.ys.map((t) => t.id), batchSize, programs: this.programs(v.xs, v.ys, batchSize, false) };
    } else if (opts.validationSplit) {
      const split = opts.validationSplit;
      if (typeof split !== 'number' || !(split > 0 && split < 1)) throw new Error(`fit: validationSplit must be in (0, 1), got ${split}`);
      // Keras takes the last fraction of the samples, before any shuffling.
      const nTrain = Math.floor(xs[0].shape[0] * (1 - split));
      const vx = xs.map((t) => t.slice(0, nTrain));
      const vy = ys.map((t) => t.slice(0, nTrain));
      xs = xs.map((t) => t.slice(0, 0, nTrain));
      ys = ys.map((t) => t.slice(0, 0, nTrain));
      validationHandles = [...vx, ...vy];
      validation = { x: vx.map((t) => t.id), y: vy.map((t) => t.id), batchSize, programs: this.programs(vx, vy, batchSize, false) };
    }
    if (xs[0].shape[0] === 0) throw new Error('fit: no training samples');
    if (opts.terminateOnNaN !== undefined && typeof opts.terminateOnNaN !== 'boolean') throw new TypeError(`fit: terminateOnNaN must be true or false, got ${check.describe(opts.terminateOnNaN)}`);
    const initialEpoch = check.integer(opts.initialEpoch ?? 0, 'fit: initialEpoch', 0);
    const autosave = opts.checkpoint;
    if (autosave) checkpointName(autosave.url, 'fit: checkpoint.url');
    const saveEvery = autosave?.everyEpochs ?? 1;
    if (!Number.isInteger(saveEvery) || saveEvery < 1) throw new Error(`fit: checkpoint.everyEpochs must be a positive integer, got ${saveEvery}`);
    c.optimizer.materializeState();
    const programs = this.programs(xs, ys, batchSize, true);
    const callbacks = opts.callbacks ? (Array.isArray(opts.callbacks) ? opts.callbacks : [opts.callbacks]) : [];
    const outputNames = this.logNames(c);
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
      // A callback may have changed the lr (a scheduler, paramGroups[i].lr = ...): into the device state.
      c.optimizer.syncHyperParameters();
      if (rt.stats.commands + rt.pendingCount !== before) await rt.sync();
    };
    const events: FitEvents = {
      onTrainBegin: () => invoke((cb) => cb.onTrainBegin?.({})),
      onEpochBegin: (e) => {
        // After a device loss the worker reruns epochs from its host copy: they replace their first run.
        const rerun = history.epoch.indexOf(e);
        if (rerun >= 0) {
          history.epoch.length = rerun;
          for (const v of Object.values(history.history)) v.length = rerun;
        }
        return invoke((cb) => cb.onEpochBegin?.(e, {}));
      },
      onBatchEnd: (b, logs) => invoke((cb) => cb.onBatchEnd?.(b, withAliases(logs))),
      onEpochEnd: async (e, workerLogs) => {
        const logs = withAliases(workerLogs);
        history.epoch.push(e);
        for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
        this.epoch = e + 1;
        await invoke((cb) => cb.onEpochEnd?.(e, logs));
        // The worker waits for this reply, so the weights saved are those at the end of epoch e.
        if (autosave && (e + 1) % saveEvery === 0) await this.save(autosave.url);
        return this.stopTraining;
      },
      onTrainEnd: () => invoke((cb) => cb.onTrainEnd?.({})),
    };
    if (opts.signal?.aborted) return history;
    const fitId = rt.newId();
    const abort = () => rt.engine.stopFit(fitId);
    opts.signal?.addEventListener('abort', abort);
    this.fitting = true;
    try {
      await rt.call((e) => e.fit({
        fitId, x: xs.map((t) => t.id), y: ys.map((t) => t.id), batchSize, programs,
        epochs, initialEpoch, shuffle: opts.shuffle ?? true,
        seed: nextSeed(), outputNames,
        batchEvents: callbacks.some((cb) => cb.onBatchEnd),
        terminateOnNaN: (opts.terminateOnNaN ?? true) || callbacks.some((cb) => cb.terminateOnNaN),
        validation,
      }, Comlink.proxy(events)));
    } finally {
      this.fitting = false;
      // The worker uses these by id only: keep the page handles (and so the worker copies) alive until it is done.
      keepAlive(xs, ys, validationHandles);
      opts.signal?.removeEventListener('abort', abort);
      // Gradients lived inside the worker's step program.
      for (const p of this.parameters()) p.grad = null;
    }
    return history;
  }

  async evaluate(xd: DataList, yd: DataList, opts: { batchSize?: number } = {}): Promise<Logs> {
    this.checkCompileCalled();
    const batchSize = check.integer(check.options(opts, 'evaluate: options').batchSize ?? 32, 'evaluate: batchSize', 1);
    const { xs, ys } = this.prepare(xd, yd);
    const c = this.requireCompiled();
    const values = await runtime().call((e) => e.evaluate({ x: xs.map((t) => t.id), y: ys.map((t) => t.id), batchSize, programs: this.programs(xs, ys, batchSize, false) }));
    keepAlive(xs, ys);
    return withAliases(Object.fromEntries(this.logNames(c).map((k, i) => [k, values[i]])));
  }

  /** Model output for x, computed in batches in the worker: a Tensor, or one per output. */
  predict(xd: DataList, opts: { batchSize?: number } = {}): Tensor | Tensor[] {
    const batchSize = check.integer(check.options(opts, 'predict: options').batchSize ?? 32, 'predict: batchSize', 1);
    const xs = this.inputs(xd);
    const n = xs[0].shape[0];
    const outs = noGrad(() => {
      this.eval();
      const parts: Tensor[][] = [];
      for (let s = 0; s < n; s += batchSize) parts.push(this.runAll(xs.map((x) => x.slice(0, s, s + batchSize)), false).map((p) => p.pred));
      return parts[0].map((_, o) => (parts.length === 1 ? parts[0][o] : cat(parts.map((p) => p[o]), 0)));
    });
    return outs.length === 1 ? outs[0] : outs;
  }

  predictOnBatch(xd: DataList): Tensor | Tensor[] {
    return this.predict(xd, { batchSize: Number.MAX_SAFE_INTEGER });
  }

  /** One optimizer step on one batch; resolves to the loss (and metrics) before the step. */
  async trainOnBatch(xd: DataList, yd: DataList): Promise<Logs> {
    const { xs, ys } = this.prepare(xd, yd);
    const c = this.requireCompiled();
    const { loss, metrics } = this.step(xs, ys, true);
    const values = await Promise.all([loss, ...metrics].map((t) => t.item()));
    return withAliases(Object.fromEntries(this.logNames(c).map((k, i) => [k, values[i]])));
  }

  /** The optimizer compile() made or was given (null before compile, and before the build of a model built at its first call). */
  get optimizer(): OptimizerLike | null {
    return this.compiled?.optimizer ?? null;
  }

  /**
   * Saves architecture, compile settings, weights, optimizer state, the epoch
   * reached and metadata under 'indexeddb://name'; sn.loadModel(url) restores
   * them. Atomic: a failed save leaves the previous checkpoint as it was.
   */
  async save(url: string, opts: SaveOptions = {}): Promise<CheckpointInfo> {
    this.requireBuilt('model.save');
    return saveModel(this, this.compiled, url, opts);
  }
}
