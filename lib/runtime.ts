// The page side of the op stream: spawns the worker, batches recorded ops
// into one Comlink call per microtask, frees collected handles, and applies
// backpressure when the worker falls behind.

import * as Comlink from 'comlink';
import type { Engine } from '../worker/engine.js';
import type { BackendName, Command, EngineInfo, InitOptions, MemoryInfo, ReadResult } from './protocol.js';
import { startHost, type EngineHost, type HostOptions } from './host.js';

export type BackendChoice = 'auto' | BackendName;

/** Frames from this library's own module are left out of op origins: the user's lines remain. */
const ownModule = import.meta.url;

/** Where the page is now, as stack lines outside shadenet. */
export function callerStack(): string {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  return lines.filter((l) => !l.includes(ownModule)).map((l) => l.trim()).join('\n');
}

/** Past this many ops a batch is sent without waiting for the microtask. */
const MAX_BATCH_OPS = 4096;
/** Past this many unfinished batches, awaited calls wait for the worker. */
const MAX_INFLIGHT = 4;
/** Op origins kept for anomaly reports: the most recent ops, which is where a NaN first shows up. */
const MAX_ORIGINS = 100_000;

export class Runtime {
  readonly engine: Comlink.Remote<Engine>;
  readonly ready: Promise<EngineInfo>;
  info: EngineInfo | null = null;
  get backend(): BackendName | null {
    return this.info?.backend ?? null;
  }
  /** The engine's largest tensor in bytes, once it has started. */
  maxBufferBytes = Infinity;
  /**
   * Counters for tests and the curious: Comlink calls sent, commands sent, and frees of collected
   * handles, counted apart because they arrive whenever the garbage collector runs.
   */
  readonly stats = { messages: 0, commands: 0, frees: 0 };

  private host: EngineHost;
  private nextId = 1;
  private pending: Command[] = [];
  private flushScheduled = false;
  /** Sends queued until the worker is ready, kept in order. */
  private beforeReady: (() => void)[] | null = [];
  private inflight = 0;
  private drained: (() => void)[] = [];
  private failure: Error | null = null;
  /** Set once the worker is gone (crashed, terminated, replaced): every call rejects with it. */
  private dead: Error | null = null;
  /** Rejecters of calls still waiting on the worker, so a dead worker cannot leave them hanging. */
  private waiting = new Set<(e: Error) => void>();
  private registry = new FinalizationRegistry<number>((id) => this.enqueue(['free', [id]]));
  /** Anomaly detection is on (sn.autograd.setDetectAnomaly): ops note where the page recorded them. */
  anomaly = false;
  /** Where recent ops were recorded, by output id, while anomaly detection is on; the oldest go first. */
  private origins = new Map<number, string>();
  /** While set, commands are recorded into a program instead of sent (see capture). */
  private captured: Command[] | null = null;

  /** sn.init's attention choice: under 'fused', attention that returns its weights runs the fused op too. */
  readonly attention: NonNullable<InitOptions['attention']>;

  constructor(choice: BackendChoice, opts: InitOptions = {}, hostOpts: HostOptions = {}) {
    this.attention = opts.attention ?? 'composed';
    this.host = startHost(hostOpts);
    this.host.onFailure((e) => this.fail(new Error(`${e.message}. Its tensors and models are lost; checkpoints are intact. Call sn.init() to start a new engine`)));
    this.engine = Comlink.wrap<Engine>(this.host.endpoint);
    this.ready = this.guard(this.engine.init(choice, opts)).then((info) => {
      this.info = info;
      this.maxBufferBytes = info.maxBufferBytes;
      const queued = this.beforeReady!;
      this.beforeReady = null;
      for (const send of queued) send();
      return info;
    });
    // A failed init surfaces through every later call; keep it from being an unhandled rejection here.
    this.ready.catch(() => {});
  }

  /** Commands queued and not yet sent. */
  get pendingCount() {
    return this.pending.length;
  }

  newId() {
    return this.nextId++;
  }

  /** Frees the worker's tensor when the page's handle is garbage collected. */
  track(handle: object, id: number) {
    // Captured tensors live inside a program that the worker frees itself after each run.
    if (!this.captured) this.registry.register(handle, id, handle);
  }

  /**
   * Records the commands fn queues as a program instead of sending them: the worker
   * replays it once per batch (Keras fit runs its whole loop this way).
   */
  capture(fn: () => void): Command[] {
    if (this.captured) throw new Error('capture: already capturing');
    this.flush();
    const program: Command[] = [];
    this.captured = program;
    try {
      fn();
    } finally {
      this.captured = null;
    }
    return program;
  }

  untrack(handle: object) {
    this.registry.unregister(handle);
  }

  enqueue(cmd: Command) {
    if (this.dead) return;
    if (this.captured) {
      this.captured.push(cmd);
      return;
    }
    this.pending.push(cmd);
    if (this.pending.length >= MAX_BATCH_OPS) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush() {
    this.flushScheduled = false;
    if (!this.pending.length || this.dead) return;
    const batch = this.pending;
    this.pending = [];
    this.inflight++;
    const frees = batch.reduce((n, cmd) => n + (cmd[0] === 'free' ? 1 : 0), 0);
    this.stats.frees += frees;
    this.stats.commands += batch.length - frees;
    // Uploaded data travels by transfer, not by a second copy: every 'data' command owns its buffer.
    const buffers = batch.flatMap((cmd) => (cmd[0] === 'data' ? [cmd[2].buffer as ArrayBuffer] : []));
    this.post(() => {
      this.stats.messages++;
      this.guard(this.engine.exec(Comlink.transfer(batch, buffers))).then(
        () => this.finishBatch(),
        (e) => {
          this.failure ??= e instanceof Error ? e : new Error(String(e));
          this.finishBatch();
        },
      );
    });
  }

  private finishBatch() {
    this.inflight--;
    if (this.inflight <= MAX_INFLIGHT) {
      const waiters = this.drained;
      this.drained = [];
      for (const w of waiters) w();
    }
  }

  /** Sends in order, holding sends until the worker has initialised. */
  private post(send: () => void) {
    if (this.beforeReady) this.beforeReady.push(send);
    else send();
  }

  /** Flushes, then calls the engine after everything queued before it. */
  call<T>(fn: (engine: Comlink.Remote<Engine>) => Promise<T>): Promise<T> {
    this.flush();
    return new Promise<T>((resolve, reject) => {
      this.ready.then(() => this.post(() => this.guard(fn(this.engine)).then(resolve, (e) => reject(this.withOrigin(e)))), reject);
    });
  }

  /** Remembers where the page recorded op output `id` (anomaly detection names it). */
  noteOrigin(id: number, stack: string) {
    this.origins.set(id, stack);
    if (this.origins.size > MAX_ORIGINS) this.origins.delete(this.origins.keys().next().value!);
  }

  /** An anomaly the worker found names the op's output; add where the page called that op, as PyTorch prints the forward traceback. */
  private withOrigin(e: unknown) {
    const id = e instanceof Error ? /^detectAnomaly: .*\(tensor #(\d+)\)/.exec(e.message)?.[1] : undefined;
    const origin = id && this.origins.get(Number(id));
    if (origin) (e as Error).message += `\nThe op was called at:\n${origin}`;
    return e;
  }

  /** A worker reply that rejects instead of hanging when the worker dies first. */
  private guard<T>(reply: Promise<T>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      reply.finally(() => this.waiting.delete(reject)).then(resolve, reject);
    });
  }

  /** The worker is gone: reject everything waiting on it and everything asked later. */
  private fail(error: Error) {
    if (this.dead) return;
    this.dead = error;
    this.host.terminate();
    this.pending = [];
    for (const reject of this.waiting) reject(error);
    this.waiting.clear();
    this.inflight = 0;
    for (const wake of this.drained.splice(0)) wake();
    for (const send of this.beforeReady?.splice(0) ?? []) send();
  }

  /** Waits while the worker has too many unfinished batches: where backpressure reaches loops. */
  async throttle() {
    this.flush();
    while (this.inflight > MAX_INFLIGHT) await new Promise<void>((r) => this.drained.push(r));
    this.takeFailure();
  }

  private takeFailure() {
    if (this.dead) throw this.dead;
    const e = this.failure;
    this.failure = null;
    if (e) throw e;
  }

  async read(id: number): Promise<ReadResult> {
    await this.throttle();
    return this.call((e) => e.read(id));
  }

  async sync(): Promise<void> {
    await this.call((e) => e.sync());
    this.takeFailure();
  }

  async memory(): Promise<MemoryInfo> {
    await this.sync();
    return this.call((e) => e.memory());
  }

  /** Ends the worker; calls still waiting reject with `reason`. */
  terminate(reason = 'shadenet: sn.init() replaced the engine while this call was waiting on it') {
    this.fail(new Error(reason));
  }

  /** @internal Fault injection for tests: the worker throws an uncaught error, as a crash would. */
  _crashWorker() {
    this.engine._crashSoon();
  }
}
