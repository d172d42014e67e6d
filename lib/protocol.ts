// The messages between the facade and the worker engine.

import type { DType } from './shape.js';

export type Command =
  /** Apply a registered op; requiresGrad tells the worker to record it on the tape. */
  | ['op', name: string, outId: number, inIds: number[], attrs: any, requiresGrad: boolean]
  | ['data', id: number, data: Float32Array | Int32Array, shape: number[], dtype: DType, requiresGrad: boolean]
  | ['detach', outId: number, inId: number]
  | ['free', ids: number[]]
  | ['requiresGrad', id: number, flag: boolean]
  | ['seed', seed: number]
  /** Anomaly detection on or off (sn.autograd.setDetectAnomaly): every later op's output and gradients are checked for NaN/inf. */
  | ['anomaly', on: boolean]
  | ['assign', targetId: number, srcId: number]
  /** Update tensors in place with a named rule from worker/ops/optim.ts (optimizer steps, gradient clipping). */
  | ['update', rule: string, ids: number[], attrs: any]
  | ['backward', rootId: number, seedId: number, leaves: [leafId: number, gradId: number][]];

export interface ReadResult {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: DType;
}

export interface InitOptions {
  /**
   * Kernel variants: 'workgroup' (tiled matmul, tree reductions in workgroup memory: for GPUs),
   * 'direct' (a thread per output, no barriers: for software adapters such as SwiftShader),
   * or 'auto' to choose by adapter.
   */
  kernels?: 'auto' | 'workgroup' | 'direct';
  /**
   * Threads of the wasm backend, its own included (default: half the cores, 1 to 4).
   * More than one needs a cross-origin isolated page (COOP and COEP headers).
   */
  threads?: number;
  /**
   * Elementwise fusion (default true): chains of elementwise ops run as one kernel.
   * false runs every op as its own kernel; results agree up to float rounding (tests compare the two).
   */
  fuse?: boolean;
  /**
   * Scaled dot-product attention (nn.MultiheadAttention, Keras multiHeadAttention, F.scaledDotProductAttention):
   * 'composed' (default) runs matmul, softmax, matmul; 'fused' runs one kernel per pass that never
   * holds the [L, S] scores in memory: for long sequences, as it measured slower on SwiftShader (README).
   */
  attention?: 'fused' | 'composed';
  /**
   * WebGPU: optimizer steps between host copies of the tensors the page holds (parameters,
   * optimizer state, data), which the engine restores after a device loss (default 100; 0: no
   * copies). Keras fit also copies at the start of each epoch and at its end.
   */
  hostCopyEvery?: number;
}

export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** Which backend the engine runs on, and why (sn.backendInfo()). */
export interface EngineInfo {
  backend: BackendName;
  /** Why this backend: requested, or what 'auto' found. */
  reason: string;
  /** The WebGPU adapter seen (vendor, architecture, description), where there was one. */
  adapter?: string;
  /** Threads the wasm backend computes on. */
  threads?: number;
  /** The largest tensor the engine can hold, in bytes (the page refuses larger ones at the user's line). */
  maxBufferBytes: number;
}

export interface MemoryInfo {
  liveTensors: number;
  /** Of the live tensors, those whose memory was freed under pressure (recomputed when next used; see worker/liveness.ts). */
  evictedTensors: number;
  pooledBytes: number;
  allocatedBytes: number;
  /** Kernels dispatched on the device since init: the difference across a training step is its kernel count. */
  kernels: number;
  /** WebGPU devices lost (driver reset, GPU process crash) and recovered from since init. */
  deviceLosses: number;
}

/** A recorded step: bind `inputs` (x batches, then y batches), run `commands`, then `outputs` hold scalars. */
export interface ProgramSpec {
  commands: Command[];
  inputs: number[];
  outputs: number[];
}

export interface EvalSpec {
  x: number[];
  y: number[];
  batchSize: number;
  /** One program per batch size that occurs (the full size and the remainder). */
  programs: Record<number, ProgramSpec>;
}

export interface FitSpec extends EvalSpec {
  /** Names this fit to stopFit; unique per engine. */
  fitId: number;
  epochs: number;
  initialEpoch: number;
  shuffle: boolean;
  seed: number;
  /** Names of the program outputs in logs: 'loss', then metrics. */
  outputNames: string[];
  /** Stop with an error naming epoch and batch when the loss is NaN or infinite (Keras' TerminateOnNaN). */
  terminateOnNaN: boolean;
  /** Whether the page listens to batch ends (they cost a small readback each, throttled). */
  batchEvents: boolean;
  validation?: EvalSpec;
}

/** Progress callbacks into the page (Comlink proxies). onEpochEnd may answer true to stop training. */
export interface FitEvents {
  onTrainBegin?(): Promise<void> | void;
  onEpochBegin?(epoch: number): Promise<void> | void;
  onBatchEnd?(batch: number, logs: Record<string, number>): Promise<void> | void;
  onEpochEnd?(epoch: number, logs: Record<string, number>): Promise<boolean | void> | boolean | void;
  onTrainEnd?(): Promise<void> | void;
}
