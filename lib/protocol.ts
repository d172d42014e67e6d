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
  | ['assign', targetId: number, srcId: number]
  | ['backward', rootId: number, seedId: number, leaves: [leafId: number, gradId: number][]];

export interface ReadResult {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: DType;
}

export interface EngineInfo {
  backend: 'webgpu' | 'cpu';
}

export interface MemoryInfo {
  liveTensors: number;
  pooledBytes: number;
  allocatedBytes: number;
}
