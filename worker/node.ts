/// <reference types="node" />
// Worker entry for Node (worker_threads): the same engine as in a browser,
// exposed over Comlink's node adapter. WebGPU comes from the optional `webgpu`
// package (Dawn), loaded only when a backend other than 'cpu' is asked for;
// without it, or without a GPU/Vulkan driver, 'auto' falls back to the CPU.
// Checkpoints are files (there is no IndexedDB).

import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter';
import { Engine } from './engine.js';
import { FileCheckpointStore } from './checkpoint-files.js';

let dawn: Promise<GPU> | null = null;

async function openDawn(): Promise<GPU> {
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (e) {
    throw new Error(`WebGPU is not available: Node needs the optional 'webgpu' package (npm install webgpu): ${e instanceof Error ? e.message : e}`);
  }
  // The backend uses WebGPU's global enums (GPUBufferUsage, GPUMapMode).
  Object.assign(globalThis, webgpu.globals);
  return webgpu.create([]);
}

if (!parentPort) throw new Error('shadenet: node-worker.js runs as a worker_threads worker, started by the Node entry');
Comlink.expose(new Engine({ openGpu: () => (dawn ??= openDawn()), checkpointStorage: new FileCheckpointStore() }), nodeEndpoint(parentPort));
