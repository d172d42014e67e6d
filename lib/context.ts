// The one engine a page talks to: started on first use with backend 'auto',
// or explicitly by sn.init().

import type { BackendName, EngineInfo, InitOptions } from './protocol.js';
import { Runtime, type BackendChoice } from './runtime.js';
import * as check from './validate.js';
import type { HostOptions } from './host.js';

let current: Runtime | null = null;

export function runtime(): Runtime {
  return (current ??= new Runtime('auto'));
}

/**
 * Starts the engine (optional: the first op starts one with 'auto').
 * Calling it again replaces the engine; tensors of the old one can no longer be used.
 *
 * - `backend`: 'auto' (default) takes WebGPU on a hardware adapter, else 'wasm' (WebAssembly
 *   SIMD); 'webgpu' fails when there is no adapter; 'cpu' is plain TypeScript. sn.backendInfo() says why.
 * - `kernels`, `threads`, `fuse`, `attention`: WebGPU's kernel variants, wasm's thread count, elementwise fusion,
 *   the fused or composed attention kernels (see InitOptions).
 * - `hostCopyEvery`: WebGPU, optimizer steps between host copies that a device loss is recovered from (see InitOptions).
 * - `workerUrl`: where the engine's worker script is, when not next to this module (see HostOptions).
 *
 * @example
 * await sn.init({ backend: 'cpu' });
 * await sn.init({ workerUrl: '/static/shadenet-worker.js' });
 */
export async function init(opts: { backend?: BackendChoice } & InitOptions & HostOptions = {}): Promise<void> {
  check.options(opts, 'init: options');
  const choice = opts.backend ?? 'auto';
  if (!['auto', 'webgpu', 'wasm', 'cpu'].includes(choice)) throw new Error(`init: backend must be 'auto', 'webgpu', 'wasm' or 'cpu', got '${choice}'`);
  if (opts.kernels !== undefined) check.oneOf(opts.kernels, ['auto', 'workgroup', 'direct'], 'init: kernels');
  if (opts.threads !== undefined) check.integer(opts.threads, 'init: threads', 1, 64);
  if (opts.fuse !== undefined && typeof opts.fuse !== 'boolean') throw new TypeError(`init: fuse must be a boolean, got ${check.describe(opts.fuse)}`);
  if (opts.attention !== undefined) check.oneOf(opts.attention, ['fused', 'composed'], 'init: attention');
  if (opts.hostCopyEvery !== undefined) check.integer(opts.hostCopyEvery, 'init: hostCopyEvery', 0);
  current?.terminate();
  const rt = new Runtime(choice, { kernels: opts.kernels, threads: opts.threads, fuse: opts.fuse, attention: opts.attention, hostCopyEvery: opts.hostCopyEvery }, { workerUrl: opts.workerUrl });
  current = rt;
  try {
    await rt.ready;
  } catch (e) {
    rt.terminate();
    if (current === rt) current = null;
    throw e;
  }
}

/** The backend the engine runs on; null until the engine has started. */
export function backend(): BackendName | null {
  return current?.backend ?? null;
}

/** The backend and why it was chosen ({ backend, reason, adapter?, threads? }); null until the engine has started. */
export function backendInfo(): EngineInfo | null {
  return current?.info ? { ...current.info } : null;
}
