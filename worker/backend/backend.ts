// The backend connector: a handful of methods, all semantics live above it
// (worker/ops). Three implementations: webgpu, wasm (the CPU path: SIMD,
// threads when cross-origin isolated) and cpu (plain TypeScript: the oracle
// for tests and the fallback where WebAssembly cannot compile).

import type { DType } from '../../lib/shape.js';
import type { Kernel } from './kernel.js';

export type TypedArray = Float32Array | Int32Array;

/** Opaque device memory holding `size` elements of `dtype`. */
export interface Storage {
  readonly size: number;
  readonly dtype: DType;
}

/** A backend's compiled form of a kernel structure (see Backend.prepare); opaque above the backend. */
export interface Prepared {
  readonly key: string;
}

/** A prepared kernel on its storages, as a step plan records it. */
export interface Launch {
  prepared: Prepared;
  kernel: Kernel;
  inputs: Storage[];
  outputs: Storage[];
}

export interface CompiledSteps {
  /** Enqueues every launch in order; `changed` replaces some launches' kernels (same structure: new counters or offsets). */
  replay(changed: Map<number, Kernel>): void;
  /** Moves the launches from some storages to others (same sizes); what binds them is made again, nothing else. */
  rebind(moved: Map<Storage, Storage>): void;
  dispose(): void;
}

/** Backends whose dispatch is a plain call (cpu, wasm) replay a plan by dispatching each launch again. */
export function sequentialSteps(backend: Backend, recorded: Launch[]): CompiledSteps {
  let launches = recorded;
  return {
    replay(changed) {
      launches.forEach((l, i) => backend.dispatch(l.prepared, changed.get(i) ?? l.kernel, l.inputs, l.outputs));
    },
    rebind(moved) {
      const move = (list: Storage[]) => list.map((s) => moved.get(s) ?? s);
      launches = launches.map((l) => ({ ...l, inputs: move(l.inputs), outputs: move(l.outputs) }));
    },
    dispose() {},
  };
}

export interface Backend {
  readonly name: 'webgpu' | 'wasm' | 'cpu';
  /** The largest storage alloc() can make, in bytes: larger tensors are refused before allocating. */
  readonly maxBufferBytes: number;
  /** Distinct storages one kernel may bind (WebGPU's per-stage limit); unbounded when absent. */
  readonly maxStorageBindings?: number;
  alloc(size: number, dtype: DType): Storage;
  /** Returns memory to the pool; queued work that uses it still completes. */
  free(s: Storage): void;
  write(s: Storage, data: TypedArray): void;
  /** Resolves with a copy of the storage once all queued work that writes it is done. */
  read(s: Storage): Promise<TypedArray>;
  /**
   * What `kernel` needs compiled (a pipeline, a generated loop), made once per kernel
   * structure and cached: kernels that differ only in sizes, offsets or seeds share it.
   */
  prepare(kernel: Kernel, inputs: Storage[], outputs: Storage[]): Prepared;
  /**
   * Enqueues `kernel` reading `inputs` and writing `outputs`. `prepared` comes from prepare() of this
   * kernel on these storages, or of one that differs only in random seed and counter (step plans replay so).
   */
  dispatch(prepared: Prepared, kernel: Kernel, inputs: Storage[], outputs: Storage[]): void;
  /** Compiles a recorded sequence of launches for replay (worker/plan.ts); the storages stay as recorded. */
  compile(launches: Launch[]): CompiledSteps;
  /** Submits queued work. */
  flush(): void;
  /** Resolves when everything submitted so far has finished on the device. */
  done(): Promise<void>;
  /** Throws for the first index a kernel found out of range since the last check (kernels cannot throw), then clears. */
  checkFlags(): Promise<void>;
  /** Releases pooled memory that has gone unused for a while. */
  trim(): void;
  memory(): { pooledBytes: number; allocatedBytes: number };
  /** WebGPU: whether a device loss left this storage with nothing to restore it from. */
  isLost?(s: Storage): boolean;
}

export const bytesPerElement = (_dtype: DType) => 4;
