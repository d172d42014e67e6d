// Keras fit and evaluate, entirely inside the worker: the page records one
// training step as a program (forward, loss, metrics, backward, optimizer
// update) and this loop replays it per batch: the first batch of each
// program runs op by op into a step plan (worker/plan.ts), the rest replay
// the plan with the batch's rows patched in (the optimizer's step counts
// live on the device, so its update replays unchanged). Losses and metrics
// add up on the device; they are read back once per epoch, and batch
// progress only when the page asked for it and at most every BATCH_EVENT_MS.

import type { Command, FitEvents, FitSpec, EvalSpec, ProgramSpec } from '../lib/protocol.js';
import { c, f, shiftInputs, x, type Kernel } from './backend/kernel.js';
import type { Storage } from './backend/backend.js';
import type { Ctx } from './ctx.js';
import type { Buf, WT } from './tensor.js';
import { StepPlan, type Tag } from './plan.js';
import { olderIds, type KeptSweeps } from './fit-plans.js';
import { permutation } from '../lib/data/sampler.js';

const BATCH_EVENT_MS = 100;
/** Steps allowed in flight on the device before the loop waits for one to finish. */
const MAX_STEPS_IN_FLIGHT = 2;

/**
 * Lets the fits and evaluations running on one engine take turns batch by batch (FIFO), so
 * two models training at once both make progress and neither waits for the other to end.
 */
export class Turns {
  private waiting: (() => void)[] = [];
  private held = false;

  /** Resolves when it is the caller's turn; call `pass()` after one batch. */
  async take(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  pass() {
    const next = this.waiting.shift();
    if (next) next();
    else this.held = false;
  }
}

export interface FitHost {
  ctx: Ctx;
  turns: Turns;
  command(cmd: Command): void;
  get(id: number): WT;
  set(id: number, t: WT): void;
  free(id: number): void;
  flush(): void;
  done(): Promise<void>;
  readScalars(ts: WT[]): Promise<number[]>;
  /** Whether steps run as plans (off: op by op, for tests that compare the two); counts what the plans did. */
  plans: { on: boolean; recorded: number; replayed: number; refused: number };
  /** Sweep states earlier fit calls left (worker/fit-plans.ts). */
  keptSweeps: KeptSweeps<SweepState>;
  /** The memory an id holds now; undefined once it is gone. */
  bufOf(id: number): Buf | undefined;
  /** Copies the page's tensors to host memory (see Engine.hostCopy); resolves with the copy's number, 0 if none. */
  hostCopy(at: string): Promise<number>;
  /** Device losses recovered from so far; waits for one in progress first. */
  losses(): Promise<number>;
  /** After a loss: the host copy the engine restored, and the engine's report, which the fit takes over. */
  takeLoss(): { point: number; report: Error };
}

/** Device losses a fit resumes from before it gives up. */
const MAX_RESUMES = 3;

/** Yields to the worker's message loop, so an abort or other calls can arrive. */
const yieldToMessages = () => new Promise<void>((r) => setTimeout(r, 0));

/** Ids a program creates: freed after every run so the next run starts clean. */
function createdIds(program: Command[]): number[] {
  const ids: number[] = [];
  for (const cmd of program) {
    if (cmd[0] === 'op' || cmd[0] === 'data' || cmd[0] === 'detach') ids.push(cmd[0] === 'op' ? cmd[2] : cmd[1]);
    else if (cmd[0] === 'backward') ids.push(...cmd[3].map(([, g]) => g));
  }
  return ids;
}

/** Ids a command reads (frees and requiresGrad flags are not reads: they go with the tensor). */
function readsOf(cmd: Command): number[] {
  switch (cmd[0]) {
    case 'op': return cmd[3];
    case 'detach': return [cmd[2]];
    case 'assign': return [cmd[1], cmd[2]];
    case 'update': return cmd[2];
    case 'backward': return [cmd[1], cmd[2], ...cmd[3].flatMap(([leaf, g]) => [leaf, g])];
    default: return [];
  }
}

/**
 * The program without ops whose results nothing reads: the prediction of a softmax layer whose
 * loss and accuracy read its logits, say. Random ops stay (their draws advance the stream).
 */
function withoutDeadOps(program: ProgramSpec): ProgramSpec {
  const read = new Set(program.outputs);
  const dead = new Set<number>();
  const kept: Command[] = [];
  for (let i = program.commands.length - 1; i >= 0; i--) {
    const cmd = program.commands[i];
    if (cmd[0] === 'op' && !read.has(cmd[2]) && cmd[1] !== 'random') {
      dead.add(cmd[2]);
      continue;
    }
    for (const id of readsOf(cmd)) read.add(id);
    kept.push(cmd);
  }
  if (!dead.size) return program;
  const commands = kept.reverse().flatMap((cmd): Command[] => {
    if (cmd[0] === 'requiresGrad' && dead.has(cmd[1])) return [];
    if (cmd[0] !== 'free') return [cmd];
    const ids = cmd[1].filter((id) => !dead.has(id));
    return ids.length ? [['free', ids]] : [];
  });
  return { ...program, commands };
}

/** One batch's step, as runBatch, record and replay take it. */
interface BatchStep {
  program: ProgramSpec;
  /** The data's inputs then targets, in the program's input order (permuted for this epoch). */
  sources: WT[];
  start: number;
  end: number;
  /** Device-side sums of the outputs, then the first-bad-batch marker. */
  sums: WT[];
  batches: WT;
  toFree: number[];
}

/**
 * A program's recorded plan, and where the recorded batch's rows began in each source when its
 * launches read them in place (each replay moves them to its batch's rows); null when the rows
 * were copied into storages of the step's own (some kernel reads its inputs at a fixed place).
 */
interface FitPlan {
  plan: StepPlan;
  rowsAt: number[] | null;
}

/** Where row `start` of a source begins in its storage. */
const rowAt = (t: WT, start: number) => t.offset + start * t.strides[0];

/**
 * What a sweep's plans are bound to: the sums they add into, the batch count, the data they copy
 * rows from (the page's tensors, or this sweep's permutation of them). Kept across a fit's epochs
 * (rewritten in place at each start), so the plans recorded in the first epoch replay in all.
 */
export interface SweepState {
  sums: WT[];
  batches: WT;
  sources: WT[];
  /** The programs the sweep runs (without dead ops): the keys of `plans`. */
  programs: Record<number, ProgramSpec>;
  /** Null when plans are off. */
  plans: Map<ProgramSpec, FitPlan | null> | null;
  /** Programs whose rows must be copied for their plan (see FitPlan). */
  copyRows: Set<ProgramSpec>;
  toFree: Map<ProgramSpec, number[]>;
  /** Sweeps run on this state so far. */
  sweeps: number;
}

function disposeState({ sums, batches, sources, plans }: SweepState) {
  for (const t of [...sums, ...sources]) t.release();
  for (const p of plans?.values() ?? []) p?.plan.dispose();
  batches.release();
}

export class FitLoop {
  private stopRequested = false;
  /** Sweep states by spec while a fit runs (its epochs and validations); null outside fit. */
  private kept: Map<EvalSpec, SweepState> | null = null;
  /** Device losses when the kept states were made. */
  private keptAt = 0;

  constructor(private host: FitHost) {}

  stop() {
    this.stopRequested = true;
  }

  /** Rows of `data` in the order of `perm` (one gather per epoch; batches are then slice views). */
  private permuted(data: WT, perm: Int32Array): WT {
    const { ctx } = this.host;
    return ctx.op('indexSelect', [data, ctx.fromData(perm, [perm.length], 'int32')], { dim: 0 });
  }

  private rows(data: WT, start: number, end: number): WT {
    return this.host.ctx.op('slice', [data], { dim: 0, start, end });
  }

  /**
   * Runs `programs` over the data in batches, adding each output (times the batch size)
   * into device-side sums. Returns the sums (the caller releases them); `onBatch` sees running
   * means when asked for. Within a fit, with plans on, what the steps' plans are bound to
   * (sums, batch count, data) is kept for the next sweep of the same spec (see Kept).
   */
  private async sweep(spec: EvalSpec, programs: Record<number, ProgramSpec>, perm: Int32Array | null, onBatch?: (batch: number, sums: WT[], seen: number) => Promise<void> | void) {
    const keep = this.kept && this.host.plans.on;
    const state = this.kept?.get(spec) ?? (keep ? this.resume(spec, programs, perm) : undefined) ?? this.sweepState(spec, programs, perm);
    if (keep) this.kept!.set(spec, state);
    const { sums, batches, plans, toFree } = state;
    const n = state.sources[0].shape[0];
    const outputs = sums.length - 1;
    const inFlight: Promise<void>[] = [];
    let lastYield = performance.now();
    try {
      if (state.sweeps++ > 0) this.restart(state, spec, perm);
      let batch = 0;
      for (let start = 0; start < n; start += spec.batchSize, batch++) {
        const end = Math.min(n, start + spec.batchSize);
        const program = state.programs[end - start];
        await this.host.turns.take();
        try {
          if (this.stopRequested) break;
          const batchStep: BatchStep = { program, sources: state.sources, start, end, sums, batches, toFree: toFree.get(program)! };
          const plan = plans?.get(program);
          if (plan) this.replay(plan, batchStep);
          else if (plans && plan === undefined) this.record(plans, state.copyRows, batchStep);
          else this.runBatch(batchStep);
          this.host.flush();
        } finally {
          this.host.turns.pass();
        }
        inFlight.push(this.host.done());
        if (inFlight.length > MAX_STEPS_IN_FLIGHT) await inFlight.shift();
        if (onBatch) await onBatch(batch, sums.slice(0, outputs), end);
        if (performance.now() - lastYield > 50) {
          await yieldToMessages();
          lastYield = performance.now();
        }
      }
      await Promise.all(inFlight);
    } catch (e) {
      if (!keep) disposeState(state);
      throw e;
    }
    for (const s of sums) s.retain();
    if (!keep) disposeState(state);
    return sums;
  }

  /**
   * The state an earlier fit left for alike programs (worker/fit-plans.ts), its plans keyed by
   * this fit's programs and moved onto this fit's data; undefined when none fits.
   */
  private resume(spec: EvalSpec, specPrograms: Record<number, ProgramSpec>, perm: Int32Array | null): SweepState | undefined {
    const programs = Object.fromEntries(Object.entries(specPrograms).map(([b, p]) => [b, withoutDeadOps(p)]));
    const kept = this.host.keptSweeps.take(programs, (id) => this.host.bufOf(id));
    if (!kept) return undefined;
    const { state, data: views } = kept;
    return this.host.ctx.scoped(() => {
      const data = [...spec.x, ...spec.y].map((id) => (perm ? this.permuted(this.host.get(id), perm) : this.host.get(id)));
      // The rows copies read the data at the batch's offset: its layout and memory size must be the same.
      // Plans reading rows in place move each source on its own: sources sharing a storage do not resume.
      const shared = new Set(data.map((t) => t.storage)).size < data.length;
      if (shared || data.some((t, i) => !same(t.shape, views[i].shape) || !same(t.strides, views[i].strides) || t.storage.size !== views[i].storage.size || t.dtype !== views[i].dtype)) {
        kept.dispose();
        return undefined;
      }
      const moved = new Map<Storage, Storage>();
      data.forEach((t, i) => { if (t.storage !== views[i].storage) moved.set(views[i].storage, t.storage); });
      for (const [size, program] of Object.entries(programs)) {
        const plan = state.plans!.get(state.programs[+size]);
        if (moved.size) plan?.plan.move(moved);
        state.plans!.set(program, plan!);
        if (state.copyRows.delete(state.programs[+size])) state.copyRows.add(program);
        state.toFree.set(program, [...program.inputs, ...createdIds(program.commands)]);
      }
      for (const old of Object.values(state.programs)) {
        state.plans!.delete(old);
        state.toFree.delete(old);
      }
      state.programs = programs;
      state.sources = data.map((t) => t.retain());
      // A first sweep on this state: nothing to restart.
      state.sweeps = 0;
      this.zero(state);
      return state;
    });
  }

  /** A sweep's first state: zeroed sums, the data in this sweep's order, no plans yet. */
  private sweepState(spec: EvalSpec, specPrograms: Record<number, ProgramSpec>, perm: Int32Array | null): SweepState {
    const { ctx } = this.host;
    const programs = Object.fromEntries(Object.entries(specPrograms).map(([b, p]) => [b, withoutDeadOps(p)]));
    const xs = spec.x.map((id) => this.host.get(id));
    const ys = spec.y.map((id) => this.host.get(id));
    const outputs = Object.values(programs)[0]?.outputs.length ?? 0;
    // Made in a scope, so that their one owner is the state (outside any scope the context would keep them forever).
    return ctx.scoped(() => {
      const [batches, ...sums] = Array.from({ length: outputs + 2 }, () => ctx.empty([]).retain());
      const state: SweepState = {
        sums,
        batches,
        sources: [...xs, ...ys].map((t) => (perm ? this.permuted(t, perm) : t).retain()),
        programs,
        plans: this.host.plans.on ? new Map<ProgramSpec, FitPlan | null>() : null,
        // Rows are read in place only from distinct storages (a delta per storage).
        copyRows: new Set(new Set([...xs, ...ys].map((t) => t.buf)).size < xs.length + ys.length ? Object.values(programs) : []),
        // What each program leaves to free after a run, worked out once rather than per batch.
        toFree: new Map(Object.values(programs).map((p) => [p, [...p.inputs, ...createdIds(p.commands)]])),
        sweeps: 0,
      };
      this.zero(state);
      return state;
    });
  }

  /**
   * The batch count and sums at 0, the first-bad-batch marker at -1, in kernels of up to 8 outputs (a
   * stage's storage bindings), not one kernel each.
   */
  private zero({ batches, sums }: SweepState) {
    const scalars = [batches, ...sums];
    for (let i = 0; i < scalars.length; i += 8) {
      const some = scalars.slice(i, i + 8);
      this.host.ctx.mapInto(some.map((_, j) => c(i + j === scalars.length - 1 ? -1 : 0)), [], some);
    }
  }

  /** A kept state for another sweep: sums and batch count zeroed in place, the data in this sweep's order (its plans moved onto it). */
  private restart(state: SweepState, spec: EvalSpec, perm: Int32Array | null) {
    const { ctx } = this.host;
    const { sources } = state;
    ctx.scoped(() => {
      this.zero(state);
      if (!perm) return;
      const moved = new Map<Storage, Storage>();
      [...spec.x, ...spec.y].forEach((id, i) => {
        const next = this.permuted(this.host.get(id), perm).retain();
        moved.set(sources[i].storage, next.storage);
        sources[i].release();
        sources[i] = next;
      });
      for (const p of state.plans?.values() ?? []) p?.plan.move(moved);
    });
  }

  /**
   * Leaves the sweeps' states to the next fit call (worker/fit-plans.ts): the data they read is let
   * go (a resumed state moves onto that fit's data), their shape and memory remembered.
   */
  private leaveKept() {
    for (const state of this.kept?.values() ?? []) {
      const older = new Map(olderIds(state.programs).map((id) => [id, this.host.bufOf(id)]));
      const data = state.sources.map((t) => ({ shape: t.shape, strides: t.strides, dtype: t.dtype, storage: t.storage }));
      for (const t of state.sources) t.release();
      state.sources = [];
      this.host.keptSweeps.keep({ programs: state.programs, state, older, data, dispose: () => disposeState(state) });
    }
    this.kept?.clear();
  }

  /** Lets go of what sweeps kept (a failed fit, or a device loss: plans compiled on the lost device do not replay on the new one). */
  private dropKept() {
    for (const state of this.kept?.values() ?? []) disposeState(state);
    this.kept?.clear();
  }

  /**
   * One step of the program on rows [start, end): its outputs added into `sums` and the first
   * non-finite batch noted in the marker after them. Synchronous: nothing else runs in between.
   * With `tag` (recording a plan) what the step does is tagged: a command by its index; with
   * `copyRows` too the rows are copied into tensors of the step's own, so that only that copy's
   * offset changes from batch to batch, the copy for input i tagged -1 - i.
   */
  private runBatch({ program, sources, start, end, sums, batches, toFree }: BatchStep, tag?: (t: Tag) => void, copyRows = false) {
    const { ctx } = this.host;
    ctx.scoped(() => {
      program.inputs.forEach((id, i) => {
        const rows = this.rows(sources[i], start, end);
        tag?.(-1 - i);
        if (!copyRows) return this.host.set(id, rows);
        // A copy dispatched now, under its tag: a lazy one would run wherever it is first read.
        const copy = ctx.empty(rows.shape, rows.dtype);
        ctx.mapInto([x(0)], [rows], [copy]);
        this.host.set(id, copy);
      });
      // The optimizer's step counts and hyper-parameters live on the device: its update replays unchanged.
      program.commands.forEach((cmd, i) => {
        tag?.(i);
        this.host.command(cmd);
      });
      tag?.(undefined);
      // One kernel updates every sum, the first-bad-batch marker and the batch count: inputs are [sums..., marker, count, outputs...].
      const outs = program.outputs.map((id) => this.host.get(id));
      const marker = sums.length - 1;
      const count = sums.length;
      const k = sums.length + 1;
      const exprs = outs.map((_, i) => f('add', x(i), f('mul', x(k + i), c(end - start))));
      if (outs.length) exprs.push(f('where', f('ge', x(marker), c(0)), x(marker), f('where', f('isfinite', x(k)), c(-1), x(count))));
      else exprs.push(x(marker));
      exprs.push(f('add', x(count), c(1)));
      ctx.mapInto(exprs, [...sums, batches, ...outs], [...sums, batches]);
      for (const id of toFree) this.host.free(id);
    });
  }

  /**
   * Runs the step op by op and keeps its plan (null when it cannot be replayed: it then always runs
   * op by op). A plan whose launches read the rows in place but cannot all be moved to another
   * batch's rows is dropped, and the program's next batch records again, copying its rows.
   */
  private record(plans: Map<ProgramSpec, FitPlan | null>, copyRows: Set<ProgramSpec>, step: BatchStep) {
    const copies = copyRows.has(step.program);
    const plan = StepPlan.record(this.host.ctx, (tag) => this.runBatch(step, tag, copies));
    if (plan && !copies && !this.readsMove(plan, step.sources)) {
      plan.dispose();
      copyRows.add(step.program);
      return;
    }
    plans.set(step.program, plan && { plan, rowsAt: copies ? null : step.sources.map((t) => rowAt(t, step.start)) });
    if (plan) this.host.plans.recorded++;
    else this.host.plans.refused++;
  }

  /** Whether every launch that reads the data was made by a command and reads it at places shiftInputs can move. */
  private readsMove(plan: StepPlan, sources: WT[]): boolean {
    const data = new Set(sources.map((t) => t.storage));
    return plan.launchesReading(data).every(({ tag, kernel, inputs }) => tag !== undefined && tag >= 0 && shiftInputs(kernel, inputs.map((s) => data.has(s)), 1) !== null);
  }

  /** The step again through its plan, on this batch's rows: its copies of them, or its launches reading the data, moved there. */
  private replay({ plan, rowsAt }: FitPlan, { sources, start }: BatchStep) {
    plan.replay(this.host.ctx, (tag, k, inputs) => {
      if (rowsAt === null) {
        if (tag >= 0 || k.kind !== 'map') return undefined;
        return { ...k, inputs: [{ ...k.inputs[0], offset: rowAt(sources[-1 - tag], start) }] };
      }
      // Every source is in a storage of its own (see copyRows): each moves by as far as its batch rows did.
      // readsMove saw at recording that every launch reading them can move (shiftInputs is not null).
      let shifted: Kernel = k;
      sources.forEach((src, i) => {
        const reads = inputs.map((s) => s === src.storage);
        if (reads.some(Boolean)) shifted = shiftInputs(shifted, reads, rowAt(src, start) - rowsAt[i])!;
      });
      return shifted === k ? undefined : shifted;
    });
    this.host.plans.replayed++;
  }

  /** Mean of each program output over the data. */
  async evaluate(spec: EvalSpec): Promise<number[]> {
    const sums = await this.sweep(spec, spec.programs, null);
    try {
      const n = this.host.get(spec.x[0]).shape[0];
      return (await this.host.readScalars(sums)).slice(0, -1).map((s) => s / n);
    } finally {
      for (const s of sums) s.release();
    }
  }

  /**
   * Runs the epochs. On WebGPU each epoch starts with a host copy of the model and optimizer
   * state; after a device loss the fit resumes from the epoch of the copy the engine restored
   * (its batches, shuffling and dropout replay exactly; step counts are restored with the state).
   */
  async fit(spec: FitSpec, events: FitEvents): Promise<void> {
    this.stopRequested = false;
    const n = this.host.get(spec.x[0]).shape[0];
    // Where each committed host copy of this fit resumes: its epoch and the random counter then.
    const resumes = new Map<number, { epoch: number; randCounter: number }>();
    await events.onTrainBegin?.();
    this.kept = new Map();
    this.keptAt = await this.host.losses();
    try {
      await this.epochs(spec, events, n, resumes);
      if ((await this.host.losses()) === this.keptAt) this.leaveKept();
    } finally {
      this.dropKept();
      this.kept = null;
    }
    await this.host.hostCopy('at the end of fit').catch(() => {});
    await events.onTrainEnd?.();
  }

  private async epochs(spec: FitSpec, events: FitEvents, n: number, resumes: Map<number, { epoch: number; randCounter: number }>) {
    const { ctx } = this.host;
    let resumed = 0;
    for (let epoch = spec.initialEpoch; epoch < spec.epochs && !this.stopRequested; epoch++) {
      const at = { epoch, randCounter: ctx.randCounter };
      this.host.hostCopy(`at the start of fit epoch ${epoch}`).then((point) => point && resumes.set(point, at), () => {});
      const losses = await this.host.losses();
      if (losses !== this.keptAt) {
        this.dropKept();
        this.keptAt = losses;
      }
      await events.onEpochBegin?.(epoch);
      let logs: Record<string, number>;
      try {
        logs = await this.epoch(spec, events, epoch, n);
        if ((await this.host.losses()) !== losses) throw new Error('the WebGPU device was lost during the epoch');
      } catch (e) {
        if ((await this.host.losses()) === losses) throw e;
        const { point, report } = this.host.takeLoss();
        const resume = resumes.get(point);
        if (!resume || ++resumed > MAX_RESUMES) {
          const why = resume ? `the device was lost more than ${MAX_RESUMES} times` : 'the restored host copy is not one of this fit\'s epoch starts';
          throw new Error(`fit: ${report.message}. Training stopped in epoch ${epoch}: ${why}`);
        }
        ctx.randCounter = resume.randCounter;
        epoch = resume.epoch - 1;
        continue;
      }
      // An abort mid-epoch leaves that epoch out of the history.
      if (this.stopRequested) break;
      const stop = await events.onEpochEnd?.(epoch, logs);
      if (stop) this.stopRequested = true;
    }
  }

  /** One epoch of training, then validation: the epoch's logs. */
  private async epoch(spec: FitSpec, events: FitEvents, epoch: number, n: number): Promise<Record<string, number>> {
    const perm = spec.shuffle ? permutation(n, (spec.seed + epoch * 0x9e3779b9) >>> 0) : null;
    let lastEvent = 0;
    const onBatch = spec.batchEvents
      ? async (batch: number, sums: WT[], seen: number) => {
          const now = performance.now();
          if (now - lastEvent < BATCH_EVENT_MS) return;
          lastEvent = now;
          const values = await this.host.readScalars(sums);
          await events.onBatchEnd?.(batch, Object.fromEntries(spec.outputNames.map((k, i) => [k, values[i] / seen])));
        }
      : undefined;
    const sums = await this.sweep(spec, spec.programs, perm, onBatch);
    let logs: Record<string, number>;
    try {
      const values = await this.host.readScalars(sums);
      const firstBad = values.pop()!;
      if (spec.terminateOnNaN && firstBad >= 0) {
        throw new Error(`fit: the loss became NaN or infinite at epoch ${epoch}, batch ${firstBad}; training stopped (terminateOnNaN is on by default: pass { terminateOnNaN: false } to fit to go on regardless)`);
      }
      logs = Object.fromEntries(spec.outputNames.map((k, i) => [k, values[i] / n]));
    } finally {
      for (const s of sums) s.release();
    }
    if (spec.validation && !this.stopRequested) {
      const val = await this.evaluate(spec.validation);
      spec.outputNames.forEach((k, i) => (logs[`val_${k}`] = val[i]));
    }
    return logs;
  }
}

function same(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
