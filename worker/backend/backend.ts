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

export interface Backend {
  readonly name: 'webgpu' | 'wasm' | 'cpu';
  /** The largest storage alloc() can make, in bytes: larger tensors are refused before allocating. */
  readonly maxBufferBytes: number;
  alloc(size: number, dtype: DType): Storage;
  /** Returns memory to the pool; queued work that uses it still completes. */
  free(s: Storage): void;
  write(s: Storage, data: TypedArray): void;
  /** Resolves with a copy of the storage once all queued work that writes it is done. */
  read(s: Storage): Promise<TypedArray>;
  /** Enqueues a kernel reading `inputs` and writing `outputs`. */
  run(kernel: Kernel, inputs: Storage[], outputs: Storage[]): void;
  /** Submits queued work. */
  flush(): void;
  /** Resolves when everything submitted so far has finished on the device. */
  done(): Promise<void>;
  /** Throws for the first index a kernel found out of range since the last check (kernels cannot throw), then clears. */
  checkFlags(): Promise<void>;
  /** Releases pooled memory that has gone unused for a while. */
  trim(): void;
  memory(): { pooledBytes: number; allocatedBytes: number };
}

export const bytesPerElement = (_dtype: DType) => 4;
