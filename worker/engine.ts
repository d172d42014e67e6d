// The engine: owns tensors by id, executes op batches from the page,
// records the autograd tape and answers reads.

import * as Comlink from 'comlink';
import type { BackendName, Command, EngineInfo, EvalSpec, FitEvents, FitSpec, InitOptions, ReadResult } from '../lib/protocol.js';
import type { Backend, Storage, TypedArray } from './backend/backend.js';
import { CpuBackend } from './backend/cpu/index.js';
import { DeviceLostError, WebGpuBackend, browserGpu, requestDevice, type Recovery } from './backend/webgpu/index.js';
import { createWasmBackend } from './backend/wasm/index.js';
import { c, f, x } from './backend/kernel.js';
import { backward } from './autograd.js';
import { Ctx } from './ctx.js';
import { TensorTable } from './liveness.js';
import { FitLoop, Turns, type FitHost, type SweepState } from './fit.js';
import { KeptSweeps } from './fit-plans.js';
import { LoopReplay } from './replay.js';
import { OPS } from './ops/index.js';
import { UPDATES } from './ops/optim.js';
import type { WT } from './tensor.js';
import { Checkpoints, type CheckpointStorage, type SaveOptions } from './checkpoint.js';
import type { RawTensor } from './safetensors.js';

export interface EngineServices {
  /** The WebGPU entry point, or a rejection saying why there is none. */
  openGpu?: () => Promise<GPU>;
  /** Where checkpoints live; IndexedDB when absent. */
  checkpointStorage?: CheckpointStorage;
}

export class Engine {
  private backend!: Backend;
  ctx!: Ctx;
  private tensors!: TensorTable;
  /** The first failure of a batch; reported by the next read or sync, then cleared. */
  private error: Error | null = null;

  private readonly openGpu: () => Promise<GPU>;
  private readonly checkpoints: Checkpoints;

  /** Optimizer steps between host copies of the page's tensors (WebGPU only; 0: none). */
  private hostCopyEvery = 100;
  private optimizerSteps = 0;
  private stepsAtCopy = 0;
  /** The latest committed host copy: its number and when it was taken, in words. */
  private lastCopy = { point: 0, at: '' };
  /**
   * Anomaly detection (sn.autograd.setDetectAnomaly): while `on`, each op output and backward
   * gradient is checked on the device; `marker` holds the index in `sites` of the first
   * non-finite one (-1: none), read by the next read or sync.
   */
  private anomaly: { on: boolean; marker: WT; sites: string[] } | null = null;
  /** The op stream's repeated steps, replayed as plans (worker/replay.ts). */
  private loops!: LoopReplay;
  /** Device losses recovered from, and the host copy the latest one restored. */
  private losses = 0;
  private restoredPoint = 0;

  /** What the host provides: Node passes Dawn's WebGPU entry point and checkpoint files. */
  constructor({ openGpu = browserGpu, checkpointStorage }: EngineServices = {}) {
    this.openGpu = openGpu;
    this.checkpoints = new Checkpoints(checkpointStorage);
  }

  async init(kind: 'auto' | BackendName, opts: InitOptions = {}): Promise<EngineInfo> {
    const { backend, ...info } = await openBackend(kind, opts, this.openGpu);
    this.backend = backend;
    this.ctx = new Ctx(this.backend, { fuse: opts.fuse, attention: opts.attention });
    this.keptSweeps.clear();
    this.tensors = new TensorTable(
      (op, inputs, attrs) => this.ctx.scoped(() => this.apply(op, inputs, attrs).retain()),
      () => {
        const { allocatedBytes, pooledBytes } = this.backend.memory();
        return allocatedBytes - pooledBytes;
      },
    );
    this.ctx.onComputed = (buf) => this.tensors.computed(buf);
    const engine = this;
    this.loops = new LoopReplay({
      ctx: this.ctx,
      tensors: this.tensors,
      run: (cmd) => {
        this.ctx.scoped(() => this.command(cmd));
        this.tensors.relieve();
      },
      failed: (e) => { this.error ??= e instanceof Error ? e : new Error(String(e)); },
      apply: (name, inputs, attrs) => this.apply(name, inputs, attrs),
      optimizerStepped: () => this.optimizerSteps++,
      get blocked() { return !!engine.anomaly; },
    });
    this.hostCopyEvery = opts.hostCopyEvery ?? 100;
    if (backend instanceof WebGpuBackend) {
      backend.onRecovered = (r) => this.recovered(r);
      backend.keepHostCopies = this.hostCopyEvery > 0;
    }
    return { backend: backend.name, maxBufferBytes: backend.maxBufferBytes, ...info };
  }

  /** Batches run so far (held commands remember theirs), and the worker JS time they took until submitted. */
  private batches = 0;
  private execMs = 0;

  /** Runs one batch from the page; resolves when the device has finished it. */
  async exec(batch: Command[]): Promise<void> {
    if (this.recovering) await this.settle();
    const t0 = performance.now();
    const batchNo = ++this.batches;
    try {
      // One scope per command, so that between commands the table alone holds what may be evicted.
      for (const cmd of batch) this.loops.push(cmd, batchNo);
    } catch (e) {
      this.loops.abandon();
      this.error ??= e instanceof Error ? e : new Error(String(e));
    }
    this.backend.flush();
    this.execMs += performance.now() - t0;
    this.backend.trim();
    if (this.hostCopyEvery && this.optimizerSteps - this.stepsAtCopy >= this.hostCopyEvery) {
      this.hostCopy(`after optimizer step ${this.optimizerSteps}`).catch(() => {});
    }
    return this.backend.done();
  }

  // ---- device loss (WebGPU): host copies of the page's tensors, and recovery from them

  /**
   * Copies every tensor the page holds (and `extra`) to host memory, reading back only those
   * changed since their last copy; resolves with the copy's number once committed (0 when
   * host copies are off or not on WebGPU). After a device loss tensors are restored from the latest.
   */
  async hostCopy(at: string, extra: WT[] = []): Promise<number> {
    const b = this.backend;
    if (!(b instanceof WebGpuBackend) || !this.hostCopyEvery) return 0;
    this.stepsAtCopy = this.optimizerSteps;
    const point = await b.hostCopy([...[...this.tensors.resident()].map(([, t]) => t), ...extra].flatMap((t) => this.kept(t)));
    if (point > this.lastCopy.point) this.lastCopy = { point, at };
    return point;
  }

  /**
   * What a host copy keeps of `t`: its memory, or for a lazy result the memory its recipe reads,
   * so that copying does not compute it. A recipe reading memory written in place before (weights,
   * optimizer state) is computed: the next write would compute it anyway, after the copy.
   */
  private kept(t: WT): Storage[] {
    const p = t.buf.pending;
    return p && !p.inputs.some((b) => b.version > 0) ? p.inputs.map((b) => b.storage) : [t.storage];
  }

  /** The engine runs on a new device: the next read or sync reports what was restored and what was lost. */
  private recovered({ why, point }: Recovery) {
    this.losses++;
    // Plans were compiled on the lost device: recorded again on the new one.
    this.loops.dropPlan();
    this.keptSweeps.clear();
    this.restoredPoint = point;
    // The anomaly marker is the engine's own, never copied: it starts over.
    if (this.anomaly) {
      this.ctx.scoped(() => this.ctx.mapInto([c(-1)], [], [this.anomaly!.marker]));
      this.anomaly.sites = [];
    }
    // A lazy result is not computed here: that would run kernels on inputs that may be lost (the
    // next use of it says so, naming the op); only tensors holding memory are listed.
    const lost = [...this.tensors.resident()].filter(([, t]) => !t.buf.pending && this.backend.isLost?.(t.storage)).map(([id]) => `#${id}`);
    const from = point ? `the host copy taken ${this.lastCopy.at}` : this.hostCopyEvery ? 'the data uploaded from the page (no host copy had been taken yet)' : 'nothing (host copies are off: hostCopyEvery is 0)';
    const lostText = lost.length ? `; ${lost.length} tensors computed after it are lost (${lost.slice(0, 8).join(', ')}${lost.length > 8 ? ', ...' : ''}): reading or using one throws` : '';
    this.error = new DeviceLostError(`shadenet: the WebGPU device was lost (${why}). The engine recovered on a new device: tensors were restored from ${from}, undoing work done since${lostText}`);
  }

  private get recovering() {
    return this.backend instanceof WebGpuBackend && !!this.backend.recovery;
  }

  /** Waits while a lost device is being replaced. */
  private async settle() {
    const b = this.backend;
    while (b instanceof WebGpuBackend && b.recovery) await b.recovery.catch(() => {});
  }

  /** A failure of work that ran when the device was lost becomes the report of what recovery restored. */
  private async explain(e: unknown): Promise<unknown> {
    if (!(e instanceof DeviceLostError)) return e;
    await this.settle();
    const report = this.error;
    this.error = null;
    const gone = this.backend instanceof WebGpuBackend && this.backend.lost;
    return report ?? (gone ? new Error(gone) : e);
  }

  private checkNotLost(t: WT, id: number) {
    // A lazy result holds no memory to lose (computing it checks what it reads) and is not computed here.
    if (!t.buf.pending && this.backend.isLost?.(t.storage)) {
      throw new DeviceLostError(`tensor #${id} was lost with the WebGPU device: it was computed after the last host copy${this.lastCopy.point ? ` (taken ${this.lastCopy.at})` : ''}, so there was nothing to restore it from`);
    }
  }

  /** @internal Executes one command (batches and fit programs). */
  command(cmd: Command) {
    switch (cmd[0]) {
      case 'op': {
        const [, name, outId, inIds, attrs, requiresGrad] = cmd;
        const inputs = inIds.map((id) => this.tensors.use(id));
        const draws = this.ctx.randCounter;
        const out = this.apply(name, inputs, attrs);
        if (this.anomaly?.on) this.noteNonFinite(out, `detectAnomaly: op '${name}' (tensor #${outId}) produced NaN or infinite values`);
        // What drew no random numbers can be computed again, should its memory be needed meanwhile.
        const made = this.ctx.randCounter === draws ? { op: name, attrs, inIds } : undefined;
        if (requiresGrad) {
          // The output may be a view shared with an input; give it its own node-bearing handle.
          const node = { op: name, inputs: inputs.map((t) => t.retain()), attrs, freed: false };
          const t = this.ctx.view(out, out.shape, out.strides, out.offset);
          t.node = node;
          t.requiresGrad = true;
          return this.tensors.set(outId, t, made);
        }
        return this.tensors.set(outId, out, made);
      }
      case 'data': {
        const [, id, data, shape, dtype, requiresGrad] = cmd;
        const t = this.ctx.fromData(data, shape, dtype);
        t.requiresGrad = requiresGrad;
        return this.set(id, t);
      }
      case 'detach': {
        const src = this.get(cmd[2]);
        return this.set(cmd[1], this.ctx.view(src, src.shape, src.strides, src.offset));
      }
      case 'free':
        for (const id of cmd[1]) this.free(id);
        return;
      case 'requiresGrad': {
        const t = this.get(cmd[1]);
        t.requiresGrad = cmd[2];
        // Optimizers will write it in place.
        if (cmd[2]) this.tensors.willWrite(t);
        return;
      }
      case 'anomaly': {
        if (cmd[1] && !this.anomaly) this.anomaly = { on: true, marker: this.ctx.scoped(() => this.ctx.full([], -1).retain()), sites: [] };
        // Turned off, the marker stays until a read or sync has reported what it holds.
        else if (this.anomaly) this.anomaly.on = cmd[1];
        return;
      }
      case 'seed':
        this.ctx.seed = cmd[1] >>> 0;
        this.ctx.randCounter = 0;
        return;
      case 'assign': {
        // In-place copy: the target keeps its id and storage (optimizers, loadStateDict).
        const [, targetId, srcId] = cmd;
        const target = this.get(targetId);
        this.tensors.willWrite(target);
        this.ctx.mapInto([x(0)], [this.tensors.use(srcId)], [target]);
        return;
      }
      case 'update': {
        const [, rule, ids, attrs] = cmd;
        const update = UPDATES[rule];
        if (!update) throw new Error(`unknown update rule '${rule}'`);
        const targets = ids.map((id) => this.get(id));
        for (const t of targets) this.tensors.willWrite(t);
        // Gradient clipping ('scale') is part of a step, not one.
        if (rule !== 'scale') this.optimizerSteps++;
        return update(this.ctx, targets, attrs);
      }
      case 'backward': {
        const [, rootId, seedId, leaves] = cmd;
        const gradIds = new Map(leaves.map(([leaf, grad]) => [this.get(leaf), grad]));
        const seen = new Set<WT>();
        const ids = this.anomaly?.on ? new Map([...this.tensors.resident()].map(([id, t]) => [t, id])) : null;
        const checkGrad = ids
          ? (op: string, out: WT, input: number, g: WT) => {
              const id = ids.get(out);
              this.noteNonFinite(g, `detectAnomaly: the backward of op '${op}'${id ? ` (tensor #${id})` : ''} returned NaN or infinite values in its gradient for input ${input}`);
            }
          : undefined;
        backward(this.ctx, this.get(rootId), seedId ? this.get(seedId) : null, (leaf, g) => {
          seen.add(leaf);
          this.accumulateGrad(leaf, g, gradIds.get(leaf));
        }, checkGrad);
        // Leaves the page expects a grad for but no gradient reached get zeros, as their .grad handle exists.
        for (const [leaf, gradId] of gradIds) if (!seen.has(leaf)) this.accumulateGrad(leaf, this.ctx.full(leaf.shape, 0), gradId);
        return;
      }
    }
  }

  /**
   * Notes `site` in the anomaly marker if `t` holds NaN or an infinity and no earlier site did:
   * on the device, counting non-finite elements (by their bits: shader compilers may fold
   * NaN arithmetic away), so nothing is read back per op.
   */
  private noteNonFinite(t: WT, site: string) {
    const a = this.anomaly!;
    if (t.dtype !== 'float32' || t.size === 0) return;
    const { ctx } = this;
    ctx.scoped(() => {
      const bad = ctx.map(f('sub', c(1), f('isfinite', x(0))), [t], t.shape);
      const count = ctx.op('sum', [ctx.reshape(bad, [t.size])], { dims: [0] });
      const index = a.sites.push(site) - 1;
      ctx.mapInto([f('where', f('ge', x(0), c(0)), x(0), f('where', x(1), c(index), c(-1)))], [a.marker, count], [a.marker]);
    });
  }

  /** Throws the first anomaly noted since the last check (see noteNonFinite). */
  private async checkAnomaly() {
    const a = this.anomaly;
    if (!a?.sites.length) return;
    const sites = a.sites;
    a.sites = [];
    const [first] = await this.backend.read(a.marker.storage);
    if (first >= 0) {
      this.ctx.scoped(() => this.ctx.mapInto([c(-1)], [], [a.marker]));
      this.backend.flush();
    }
    if (!a.on && !a.sites.length) {
      a.marker.release();
      this.anomaly = null;
    }
    if (first >= 0) throw new Error(sites[first]);
  }

  private accumulateGrad(leaf: WT, g: WT, gradId: number | undefined) {
    // The page's current .grad handle decides, not the last one made here: after `p.grad = null`
    // it is a new id (PyTorch starts a fresh gradient), after `p.grad = t` it is t's (added into t).
    const existing = gradId && this.tensors.has(gradId) ? this.get(gradId) : undefined;
    if (existing) {
      leaf.gradId = gradId!;
      this.tensors.willWrite(existing);
      this.ctx.mapInto([f('add', x(0), x(1))], [existing, g], [existing]);
      return;
    }
    if (!gradId) throw new Error('backward: no gradient handle for a leaf');
    leaf.gradId = gradId;
    const grad = this.ctx.map(x(0), [g], leaf.shape);
    // The next backward accumulates into it in place.
    this.tensors.willWrite(grad);
    this.set(gradId, grad);
  }

  /** Runs op `name` on resident tensors, without recording it for autograd. */
  private apply(name: string, inputs: WT[], attrs: any): WT {
    this.ctx.opName = name;
    const out = OPS[name].forward(this.ctx, inputs, attrs);
    // An op may hand back an input as it is (a reshape to the same shape): the output gets its own handle on it.
    return inputs.includes(out) ? this.ctx.view(out, out.shape, out.strides, out.offset) : out;
  }

  private free(id: number) {
    this.tensors.free(id);
  }

  get(id: number): WT {
    return this.tensors.get(id);
  }

  set(id: number, t: WT) {
    this.tensors.set(id, t);
  }

  private takeError() {
    const e = this.error;
    this.error = null;
    if (e) throw e;
  }

  async read(id: number): Promise<ReadResult> {
    if (this.recovering) await this.settle();
    this.drain();
    this.takeError();
    const t = this.get(id);
    this.checkNotLost(t, id);
    const flat = this.ctx.scoped(() => {
      const c = t.contiguous && t.offset === 0 && t.storage.size === t.size ? t : this.ctx.map(x(0), [t], t.shape, t.dtype);
      c.retain();
      // Computes it if lazy, before the flush.
      void c.storage;
      return c;
    });
    this.backend.flush();
    try {
      const data: TypedArray = t.size === 0 ? (t.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0)) : await this.backend.read(flat.storage);
      await this.backend.checkFlags();
      await this.checkAnomaly();
      return { data: data.length === t.size ? data : data.subarray(0, t.size), shape: t.shape, dtype: t.dtype };
    } catch (e) {
      throw await this.explain(e);
    } finally {
      flat.release();
    }
  }

  /** Fit sweeps' plans earlier fit calls left for later ones (worker/fit-plans.ts). */
  private keptSweeps = new KeptSweeps<SweepState>();

  /** Fit's step plans: on unless a test compares them with op-by-op steps; counts for those tests. */
  private plans = { on: true, recorded: 0, replayed: 0, refused: 0 };

  /** @internal Test and bench switch: step plans (fit's and the op stream's) on or off; returns what plans did so far and the worker JS time of batches. */
  _stepPlans(on: boolean) {
    const { recorded, replayed, refused } = this.plans;
    this.drain();
    this.plans.on = on;
    if (!on) {
      this.loops.reset();
      this.keptSweeps.clear();
    }
    this.loops.on = on;
    return { recorded, replayed, refused, loop: { ...this.loops.counts }, execMs: this.execMs };
  }

  /** Runs a step the op stream holds back (see LoopReplay): whatever comes next needs its results. */
  private drain() {
    try {
      this.loops.drain();
    } catch (e) {
      this.loops.abandon();
      this.error ??= e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Running fits by the page's fit id; they take turns batch by batch. */
  private fits = new Map<number, FitLoop>();
  private turns = new Turns();

  private host(): FitHost {
    return {
      ctx: this.ctx,
      turns: this.turns,
      command: (cmd) => this.command(cmd),
      get: (id) => this.get(id),
      set: (id, t) => this.set(id, t),
      free: (id) => this.free(id),
      flush: () => this.backend.flush(),
      done: () => this.backend.done(),
      // Under anomaly detection a fit runs op by op, each op's output checked: a plan replays kernels, not ops.
      plans: this.anomaly?.on ? { ...this.plans, on: false } : this.plans,
      keptSweeps: this.keptSweeps,
      bufOf: (id) => (this.tensors.has(id) ? this.tensors.get(id).buf : undefined),
      // One readback for all of them: the scalars are gathered into one small tensor first.
      readScalars: async (ts) => {
        const all = this.ctx.scoped(() => this.ctx.op('cat', ts.map((t) => this.ctx.reshape(t, [1])), { dim: 0 }).retain());
        try {
          const values = Array.from(await this.backend.read(all.storage));
          await this.backend.checkFlags();
          await this.checkAnomaly();
          return values;
        } finally {
          all.release();
        }
      },
      hostCopy: (at) => this.hostCopy(at),
      losses: async () => {
        await this.settle();
        return this.losses;
      },
      takeLoss: () => {
        const report = this.error ?? new DeviceLostError('the WebGPU device was lost');
        this.error = null;
        return { point: this.restoredPoint, report };
      },
    };
  }

  /** Keras fit: the whole epoch loop runs here; events go back to the page. Fits of several models interleave. */
  async fit(spec: FitSpec, events: FitEvents) {
    await this.settle();
    this.drain();
    this.takeError();
    const loop = new FitLoop(this.host());
    this.fits.set(spec.fitId, loop);
    try {
      return await loop.fit(spec, events);
    } catch (e) {
      throw await this.explain(e);
    } finally {
      this.fits.delete(spec.fitId);
      // Close the callbacks' channel now: until then the page keeps fit's closures, and the tensors they hold, alive.
      (events as Comlink.Remote<FitEvents>)[Comlink.releaseProxy]?.();
    }
  }

  /** Stops a running fit after its current batch. */
  stopFit(fitId: number) {
    this.fits.get(fitId)?.stop();
  }

  async evaluate(spec: EvalSpec): Promise<number[]> {
    await this.settle();
    this.drain();
    this.takeError();
    try {
      return await new FitLoop(this.host()).evaluate(spec);
    } catch (e) {
      throw await this.explain(e);
    }
  }

  async sync(): Promise<void> {
    await this.settle();
    this.drain();
    try {
      this.backend.flush();
      this.backend.trim();
      await this.backend.done();
      await this.settle();
      this.takeError();
      await this.backend.checkFlags();
      await this.checkAnomaly();
    } catch (e) {
      throw await this.explain(e);
    }
  }

  /** @internal Fault injection for tests: an uncaught error in the worker, as a crash would raise. */
  _crashSoon() {
    setTimeout(() => {
      throw new Error('shadenet: injected engine crash');
    });
  }

  memory() {
    this.drain();
    this.backend.flush();
    return { liveTensors: this.tensors.size, evictedTensors: this.tensors.evicted, ...this.backend.memory(), kernels: this.ctx.kernels, deviceLosses: this.losses };
  }

  // ---- checkpoints and safetensors: tensor data goes between buffers and storage here, never through the page

  /** One consistent snapshot: every read's copy is queued before the first await. */
  private async rawTensors(entries: [key: string, id: number][]): Promise<Record<string, RawTensor>> {
    const reads = await Promise.all(entries.map(([, id]) => this.read(id)));
    return Object.fromEntries(entries.map(([key], i) => [key, reads[i]]));
  }

  /** Saves, and names the tensors holding NaN or infinities (saved as they are; the page warns). */
  async saveCheckpoint(name: string, kind: string, meta: unknown, entries: [string, number][], opts?: SaveOptions) {
    const raws = await this.rawTensors(entries);
    const nonFinite = Object.keys(raws).filter((key) => raws[key].dtype === 'float32' && !raws[key].data.every(Number.isFinite));
    return { info: await this.checkpoints.save(name, kind, meta, raws, opts), nonFinite };
  }

  /** Reads a checkpoint; the page gives its tensors ids with adoptTensors(token, ...). */
  loadCheckpoint(name: string) {
    return this.checkpoints.load(name);
  }

  /** Creates staged tensors (from loadCheckpoint or decodeSafetensors) under the page's ids; [] drops them. */
  adoptTensors(token: number, entries: [key: string, id: number][]) {
    this.drain();
    const raws = this.checkpoints.take(token, entries.map(([key]) => key));
    this.ctx.scoped(() => entries.forEach(([, id], i) => this.set(id, this.ctx.fromData(raws[i].data, raws[i].shape, raws[i].dtype))));
    this.backend.flush();
  }

  async encodeSafetensors(entries: [string, number][], metadata?: Record<string, string>) {
    const bytes = this.checkpoints.encode(await this.rawTensors(entries), metadata);
    return Comlink.transfer(bytes, [bytes.buffer]);
  }

  decodeSafetensors(bytes: Uint8Array) {
    return this.checkpoints.decode(bytes);
  }

  listCheckpoints(location?: string) {
    return this.checkpoints.list(location);
  }

  checkpointExists(name: string) {
    return this.checkpoints.exists(name);
  }

  deleteCheckpoint(name: string) {
    return this.checkpoints.delete(name);
  }
}

/**
 * 'auto' takes WebGPU only on a hardware adapter: on a software one (SwiftShader,
 * llvmpipe, a fallback adapter) or none, the wasm backend is faster. Where
 * WebAssembly cannot compile (a CSP without 'wasm-unsafe-eval'), the TypeScript
 * backend computes instead, said once in the console.
 */
async function openBackend(kind: 'auto' | BackendName, { kernels = 'auto', threads }: InitOptions, openGpu: () => Promise<GPU>): Promise<{ backend: Backend } & Omit<EngineInfo, 'backend' | 'maxBufferBytes'>> {
  if (kind === 'cpu') return { backend: new CpuBackend(), reason: 'requested' };
  let reason = 'requested';
  let adapter: string | undefined;
  if (kind !== 'wasm') {
    try {
      const gpu = await requestDevice(await openGpu());
      adapter = gpu.adapter;
      if (kind === 'webgpu' || !gpu.software) {
        const software = kernels === 'auto' ? gpu.software : kernels === 'direct';
        const reopen = async () => ({ ...(await requestDevice(await openGpu())), software });
        const backend = new WebGpuBackend({ ...gpu, software }, reopen);
        return { backend, reason: kind === 'webgpu' ? 'requested' : 'hardware WebGPU adapter', adapter };
      }
      gpu.device.destroy();
      reason = 'the WebGPU adapter is software (CPU-emulated), so the WebAssembly CPU backend is faster';
    } catch (e) {
      if (kind === 'webgpu') throw e;
      reason = `no WebGPU (${e instanceof Error ? e.message : String(e)})`;
    }
  }
  try {
    const backend = await createWasmBackend({ threads });
    return { backend, reason, ...(adapter ? { adapter } : {}), threads: backend.threads };
  } catch (e) {
    const why = `WebAssembly cannot be compiled here (${e instanceof Error ? e.message : String(e)}; a Content-Security-Policy needs 'wasm-unsafe-eval')`;
    console.warn(`shadenet: ${why}; using the slower TypeScript CPU backend`);
    return { backend: new CpuBackend(), reason: why, ...(adapter ? { adapter } : {}) };
  }
}
