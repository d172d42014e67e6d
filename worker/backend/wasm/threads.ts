// Helper workers that share the backend's WebAssembly.Memory (only possible
// when the page is cross-origin isolated) and split GEMM rows with the
// engine's own thread. A job is a few i32 slots in a control block in that
// memory; Atomics.wait/notify hand it over and collect the finish. Every
// output row is computed whole by one thread, in the same order as with one
// thread, so results are identical whatever the thread count.

/** Control block slots (i32): job generation, helpers still working, then the GEMM arguments. */
const GEN = 0;
const PENDING = 1;
const ARGS = 2;
const SLOTS = 24;

export interface GemmJob {
  a: number; ars: number; acs: number; aBatchStride: number;
  b: number; brs: number; bcs: number; bBatchStride: number;
  c: number; bias: number; act: number;
  batch: number; m: number; n: number; k: number;
  /** Thread t packs into scratch + t * scratchBytes. */
  scratch: number; scratchBytes: number;
}
const ORDER: (keyof GemmJob)[] = ['a', 'ars', 'acs', 'aBatchStride', 'b', 'brs', 'bcs', 'bBatchStride', 'c', 'bias', 'act', 'batch', 'm', 'n', 'k', 'scratch', 'scratchBytes'];

type GemmFn = (...args: number[]) => void;

/**
 * Thread t of `threads` computes its rows of every batch (rows in multiples of 4,
 * the GEMM's tile height). Runs on the engine's thread and, as source text, in every helper.
 */
function gemmShare(gemm: GemmFn, ctl: Int32Array, t: number, threads: number) {
  const [a, ars, acs, aBatchStride, b, brs, bcs, bBatchStride, c, bias, act, batch, m, n, k, scratch, scratchBytes] = ctl.subarray(2, 2 + 17);
  const chunk = Math.ceil(m / threads / 4) * 4;
  const r0 = t * chunk;
  const r1 = Math.min(m, r0 + chunk);
  if (r0 >= r1) return;
  for (let bt = 0; bt < batch; bt++) {
    gemm(a + bt * aBatchStride * 4, ars, acs, b + bt * bBatchStride * 4, brs, bcs, c + bt * m * n * 4, bias, act, n, k, r0, r1, scratch + t * scratchBytes);
  }
}

/** A helper's whole program; `share` is gemmShare, passed in so the source survives bundling. */
function helperMain(share: typeof gemmShare) {
  self.onmessage = (e: MessageEvent) => {
    const { module, memory, control, index, threads } = e.data;
    const { gemm } = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as { gemm: GemmFn };
    const ctl = new Int32Array(memory.buffer, control, 24);
    let seen = Atomics.load(ctl, 0);
    self.postMessage('ready');
    for (;;) {
      Atomics.wait(ctl, 0, seen);
      seen = Atomics.load(ctl, 0);
      share(gemm, ctl, index, threads);
      if (Atomics.sub(ctl, 1, 1) === 1) Atomics.notify(ctl, 1);
    }
  };
}

export class Threads {
  private constructor(private ctl: Int32Array, private workers: Worker[], private gemm: GemmFn) {}

  /** Total threads, the engine's included. */
  get count() {
    return this.workers.length + 1;
  }

  /** Starts `threads - 1` helpers on `memory` (shared); rejects if they cannot start. */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, control: number, threads: number, gemm: GemmFn): Promise<Threads> {
    const url = URL.createObjectURL(new Blob([`(${helperMain})(${gemmShare});`], { type: 'text/javascript' }));
    const workers: Worker[] = [];
    try {
      await Promise.all(Array.from({ length: threads - 1 }, (_, i) => new Promise<void>((resolve, reject) => {
        const w = new Worker(url);
        workers.push(w);
        w.onmessage = () => resolve();
        w.onerror = (e) => reject(new Error(`wasm helper thread failed to start: ${e.message}`));
        w.postMessage({ module, memory, control, index: i + 1, threads });
      })));
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    } finally {
      URL.revokeObjectURL(url);
    }
    return new Threads(new Int32Array(memory.buffer, control, SLOTS), workers, gemm);
  }

  /** Runs a GEMM on every thread; returns when all rows are done. */
  runGemm(job: GemmJob) {
    const { ctl } = this;
    ORDER.forEach((key, i) => { ctl[ARGS + i] = job[key]; });
    Atomics.store(ctl, PENDING, this.workers.length);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    gemmShare(this.gemm, ctl, 0, this.count);
    for (let left = Atomics.load(ctl, PENDING); left !== 0; left = Atomics.load(ctl, PENDING)) Atomics.wait(ctl, PENDING, left);
  }

}
