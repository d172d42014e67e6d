// Step plans: one run of a training step, executed op by op, is recorded at
// the backend connector (every allocation, upload and kernel launch) and
// compiled by the backend into a plan that replays the same launches on the
// same storages without interpreting a command, generating a kernel or (on
// WebGPU) creating a bind group. What may differ between runs is patched at
// replay: random counters, kernels the caller tagged (a batch's rows) and uploads it
// tagged (an imperative loop's new data). Results are bit-identical to op-by-op
// execution, because the launches are the same. A step may leave tensors behind for the
// page (an imperative loop's outputs and gradients: its exports); the plan lends those
// storages to the page's tensors and, while the page still holds last step's, replays
// into fresh ones instead (worker/replay.ts).

import type { DType } from '../lib/shape.js';
import type { Backend, CompiledSteps, Launch, Prepared, Storage, TypedArray } from './backend/backend.js';
import type { Kernel } from './backend/kernel.js';
import type { Ctx } from './ctx.js';
import type { Buf } from './tensor.js';

/** Who caused a launch: the caller's number for it (a command's index), or none. */
export type Tag = number | undefined;

/** Data the step uploads (a 'data' command's values): the same at every replay, unless tagged and the caller gives new values. */
interface Upload {
  target: Storage;
  data: TypedArray;
  tag: Tag;
}

/** A new kernel (same structure and storages) for a launch made under `tag` reading `inputs`, or undefined to replay it as recorded. */
export type KernelPatch = (tag: number, recorded: Kernel, inputs: readonly Storage[]) => Kernel | undefined;

/**
 * Passes every call to the real backend and writes down what a step did. Storages the step
 * allocates and frees are kept, not freed: the plan owns them and replays into them.
 */
class Recorder implements Backend {
  readonly launches: (Launch & { tag: Tag })[] = [];
  readonly uploads: Upload[] = [];
  /** The tag given to what happens next. */
  tag: Tag;
  /** Why the step cannot be replayed, once something showed it. */
  failure: string | null = null;
  private recording = true;
  private temps = new Set<Storage>();
  private kept = new Set<Storage>();
  private used = new Set<Storage>();
  /** After recording: storages the step left behind that the plan owns, and those of them some tensor holds now. */
  exports: Set<Storage> | null = null;
  readonly lent = new Set<Storage>();

  /** `allowExports`: the step may leave tensors behind (see StepPlan.exports). */
  constructor(readonly inner: Backend, private allowExports = false) {}

  get name() { return this.inner.name; }
  get maxBufferBytes() { return this.inner.maxBufferBytes; }

  alloc(size: number, dtype: DType): Storage {
    const s = this.inner.alloc(size, dtype);
    if (this.recording) this.temps.add(s);
    return s;
  }

  free(s: Storage): void {
    // A plan's export comes back to the plan, which replays into it again.
    if (this.exports?.has(s)) {
      this.lent.delete(s);
      return;
    }
    if (this.recording && this.temps.has(s)) {
      this.kept.add(s);
      return;
    }
    // A replay would read a storage that is gone by then.
    if (this.recording && this.used.has(s)) this.failure ??= 'the step frees a tensor made before it';
    this.inner.free(s);
  }

  write(s: Storage, data: TypedArray): void {
    // Replays upload before their first launch, so only fresh storages may be written.
    if (!this.temps.has(s) || this.used.has(s)) this.failure ??= 'the step writes a tensor that kernels use';
    this.uploads.push({ target: s, data, tag: this.tag });
    this.inner.write(s, data);
  }

  prepare(kernel: Kernel, inputs: Storage[], outputs: Storage[]): Prepared {
    return this.inner.prepare(kernel, inputs, outputs);
  }

  dispatch(prepared: Prepared, kernel: Kernel, inputs: Storage[], outputs: Storage[]): void {
    for (const s of [...inputs, ...outputs]) this.used.add(s);
    this.launches.push({ prepared, kernel, inputs, outputs, tag: this.tag });
    this.inner.dispatch(prepared, kernel, inputs, outputs);
  }

  compile(launches: Launch[]): CompiledSteps { return this.inner.compile(launches); }
  read(s: Storage) { return this.inner.read(s); }
  flush() { this.inner.flush(); }
  done() { return this.inner.done(); }
  checkFlags() { return this.inner.checkFlags(); }
  trim() { this.inner.trim(); }
  memory() { return this.inner.memory(); }

  /** Ends recording; returns the storages the plan owns, or null (they went back to the backend) when the step cannot be replayed. */
  stop(): Storage[] | null {
    this.recording = false;
    const left = [...this.temps].filter((s) => !this.kept.has(s));
    if (left.length && !this.allowExports) this.failure ??= 'tensors the step makes outlive it';
    if (this.failure !== null) {
      for (const s of this.kept) this.inner.free(s);
      return null;
    }
    // Those left are held by the step's tensors: lent from the start.
    this.exports = new Set(left);
    for (const s of left) this.lent.add(s);
    return [...this.kept];
  }
}

export class StepPlan {
  private compiled: CompiledSteps;
  private randLaunches: number[];
  private tagged: number[];
  private exportOrder: Storage[];
  /** What the launches write: lazy results reading any of it are computed before a replay. */
  private written: Set<Storage>;

  private constructor(
    private backend: Backend,
    /** Gives back the exports lent to tensors (Buf.release calls its free). */
    readonly lender: Recorder,
    private launches: (Launch & { tag: Tag })[],
    private uploads: Upload[],
    private owned: Storage[],
    /** The random counter the recorded step started from, and how many it used. */
    private counter: number,
    private counters: number,
  ) {
    this.compiled = backend.compile(launches);
    this.exportOrder = [...(lender.exports ?? [])];
    this.written = new Set([...launches.flatMap((l) => l.outputs), ...uploads.map((u) => u.target)]);
    this.randLaunches = launches.flatMap((l, i) => (l.kernel.kind === 'rand' ? [i] : []));
    this.tagged = launches.flatMap((l, i) => (l.tag !== undefined ? [i] : []));
  }

  /**
   * Runs `step` op by op while recording it. Returns the plan, or null when the step cannot be
   * replayed (it keeps tensors it made, or changes ones kernels read); the step ran either way.
   * `step` tags what it does through the recorder it is given.
   */
  static record(ctx: Ctx, step: (tag: (t: Tag) => void) => void, { exports = false, keepLazy }: { exports?: boolean; keepLazy?: () => (b: Buf) => boolean } = {}): StepPlan | null {
    ctx.materialiseAll();
    const real = ctx.backend;
    const recorder = new Recorder(real, exports);
    const { seed, randCounter } = ctx;
    ctx.backend = recorder;
    let owned: Storage[] | null;
    try {
      step((t) => (recorder.tag = t));
      // What the step left lazy is computed inside it (so that every export holds memory), but for
      // the lazy results the caller remakes at each replay.
      if (exports) ctx.materialiseAll(keepLazy?.());
    } catch (e) {
      recorder.failure ??= 'the step failed';
      throw e;
    } finally {
      ctx.backend = real;
      owned = recorder.stop();
    }
    // Random kernels replay with later counters of the engine's seed; a step that reseeds does not replay.
    if (owned && recorder.launches.some((l) => l.kernel.kind === 'rand' && l.kernel.seed !== seed)) {
      for (const s of owned) real.free(s);
      recorder.exports = null;
      owned = null;
    }
    if (!owned) return null;
    return new StepPlan(real, recorder, recorder.launches, recorder.uploads, owned, randCounter, ctx.randCounter - randCounter);
  }

  /** Storages the step left held by tensors (allowed with `exports`), in a fixed order; a replay writes them again. */
  get exports(): readonly Storage[] {
    return this.exportOrder;
  }

  /** Kernels launched under `tag`. */
  launchesTagged(tag: number): Kernel[] {
    return this.launches.filter((l) => l.tag === tag).map((l) => l.kernel);
  }

  /** The launches that read any of `storages`. */
  launchesReading(storages: Set<Storage>): { tag: Tag; kernel: Kernel; inputs: readonly Storage[] }[] {
    return this.launches.filter((l) => l.inputs.some((s) => storages.has(s)));
  }

  /** Whether a tensor still holds this export (the one lent at the last run). */
  isLent(s: Storage) {
    return this.lender.lent.has(s);
  }

  /** Marks an export as lent to a new tensor, whose release gives it back. */
  lend(s: Storage) {
    this.lender.lent.add(s);
  }

  /**
   * The exports still held (by last run's tensors) are left to their holders, freed to the backend
   * when they let go; the plan replays into fresh storages instead (its launches rebound). `inputs`
   * moves launches that read a storage made before the step onto another (a carried hidden state).
   */
  renewLent(inputs?: Map<Storage, Storage>) {
    const exports = this.lender.exports!;
    const fresh = new Map<Storage, Storage>();
    for (const s of exports) if (this.lender.lent.has(s)) fresh.set(s, this.backend.alloc(s.size, s.dtype));
    for (const [old, s] of fresh) {
      exports.delete(old);
      exports.add(s);
    }
    this.exportOrder = this.exportOrder.map((s) => fresh.get(s) ?? s);
    // One move for both: a fresh storage may be one the launches read before (freed and pooled since).
    const moved = inputs?.size ? new Map([...fresh, ...inputs]) : fresh;
    if (moved.size) this.move(moved);
  }

  /** Replays from now on read and write other storages (same sizes) in place of some (fit's data, permuted anew each epoch). */
  move(moved: Map<Storage, Storage>) {
    const swap = (list: Storage[]) => list.map((s) => moved.get(s) ?? s);
    this.launches = this.launches.map((l) => ({ ...l, inputs: swap(l.inputs), outputs: swap(l.outputs) }));
    this.uploads = this.uploads.map((u) => ({ ...u, target: moved.get(u.target) ?? u.target }));
    this.written = new Set(swap([...this.written]));
    this.compiled.rebind(moved);
  }

  /** Kernels one replay dispatches. */
  get kernels() {
    return this.launches.length;
  }

  /** Runs the step again: uploads first (tagged ones with `data`'s values where it gives some), then every launch, in one go on the backend. */
  replay(ctx: Ctx, patch?: KernelPatch, data?: (tag: number) => TypedArray | undefined) {
    // Lazy results made since (a page's clone of a weight) that read what the step writes are computed first, as op by op.
    ctx.materialiseAll((b) => !b.pending!.inputs.some((i) => this.written.has(i.storage)));
    for (const u of this.uploads) this.backend.write(u.target, (u.tag !== undefined && data?.(u.tag)) || u.data);
    const changed = new Map<number, Kernel>();
    for (const i of this.tagged) {
      const { tag, kernel, inputs } = this.launches[i];
      const k = patch?.(tag!, kernel, inputs);
      if (k) changed.set(i, k);
    }
    for (const i of this.randLaunches) {
      const k = this.launches[i].kernel;
      if (k.kind === 'rand') changed.set(i, { ...k, seed: ctx.seed, counter: k.counter - this.counter + ctx.randCounter });
    }
    ctx.randCounter += this.counters;
    ctx.kernels += this.launches.length;
    this.compiled.replay(changed);
  }

  /** Gives the plan's storages back; queued work that uses them still completes. */
  dispose() {
    this.compiled.dispose();
    for (const s of this.owned) this.backend.free(s);
    this.owned = [];
    // Exports no tensor holds go back now; held ones when their holders let go.
    const exports = this.lender.exports;
    this.lender.exports = null;
    for (const s of exports ?? []) if (!this.lender.lent.has(s)) this.backend.free(s);
  }
}
