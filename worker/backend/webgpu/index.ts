// WebGPU backend: size-bucketed buffer pool, pipeline cache keyed by the
// generated WGSL, one command encoder per executed batch (all dispatches
// of a batch share it and its uniform arena), readback only when asked.

import type { DType } from '../../../lib/shape.js';
import type { Backend, Storage, TypedArray } from '../backend.js';
import { indexError, type GatherKernel, type Kernel } from '../kernel.js';
import { generate, type Generated } from './codegen.js';

export interface GpuDevice {
  device: GPUDevice;
  /** A CPU-emulated adapter such as SwiftShader. */
  software: boolean;
  /** The adapter in words: vendor, architecture, description. */
  adapter: string;
}

/** The browser's WebGPU entry point; hosts without one (Node) supply their own to the Engine. */
export async function browserGpu(): Promise<GPU> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error('WebGPU is not available: navigator.gpu is missing in this browser (or in its workers)');
  return gpu;
}

export async function requestDevice(gpu: GPU): Promise<GpuDevice> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU is not available: navigator.gpu.requestAdapter() returned no adapter');
  const want = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const adapterName = [info.vendor, info.architecture, info.description, info.device].filter(Boolean).join(' ');
  const software = /swiftshader|llvmpipe|software/i.test(adapterName) || !!(info as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return { device: await adapter.requestDevice({ requiredLimits }), software, adapter: adapterName || 'unnamed adapter' };
}

class GpuStorage implements Storage {
  constructor(readonly size: number, readonly dtype: DType, readonly buffer: GPUBuffer) {}
}

/** Pool buckets: four per doubling, so at most ~19% of a buffer is slack. */
function bucketBytes(bytes: number): number {
  const b = Math.max(bytes, 256);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(p / 4, 256);
  return Math.ceil(b / step) * step;
}

const UNIFORM_SLOT = 256;
const ARENA_BYTES = 1 << 20;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  /** Free buffers by size; `aged` marks those that already sat through one trim unused. */
  private pool = new Map<number, { buffer: GPUBuffer; aged: boolean }[]>();
  private pooledBytes = 0;
  private allocatedBytes = 0;
  private pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaData = new ArrayBuffer(ARENA_BYTES);
  private arenaUsed = 0;
  private lost: string | null = null;
  /** Errors the device reported for work since the last check: out-of-memory or validation, captured per flush. */
  private scopeErrors: Promise<GPUError | null>[] = [];
  readonly maxBufferBytes: number;
  /** [site, index, size] of the first out-of-range index a gather kernel met (see gather.wgsl); zero when none. */
  private flags: GPUBuffer;
  /** The gather kernel each site number (1-based) stands for, since the last check. */
  private sites: GatherKernel[] = [];

  private device: GPUDevice;
  private software: boolean;

  constructor({ device, software }: GpuDevice) {
    this.device = device;
    this.software = software;
    // A buffer is bound whole, so the binding limit caps a tensor as much as the buffer limit does.
    this.maxBufferBytes = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.flags = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.lost.then((info) => { this.lost = `WebGPU device lost: ${info.message}`; });
    this.openScopes();
  }

  /**
   * Every allocation, write and submission happens inside error scopes, so an
   * out-of-memory or validation error fails the work that caused it (reported
   * by the next read or sync) instead of going uncaptured and poisoning the device.
   */
  private openScopes() {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }

  private closeScopes() {
    this.scopeErrors.push(this.device.popErrorScope(), this.device.popErrorScope());
    this.openScopes();
    // Long runs without a check (a fit's batches) keep one combined result, not one per flush.
    if (this.scopeErrors.length > 64) this.scopeErrors = [Promise.all(this.scopeErrors).then((all) => all.find((e) => e) ?? null)];
  }

  /** Throws the first error the device reported for work submitted so far. */
  private async checkErrors() {
    const pending = this.scopeErrors;
    this.scopeErrors = [];
    const errors = await Promise.all(pending);
    this.checkLost();
    const error = errors.find((e) => e);
    if (error) {
      const kind = error instanceof GPUOutOfMemoryError ? 'WebGPU ran out of memory' : 'WebGPU rejected an operation';
      throw new Error(`${kind}: ${error.message.trim()}`);
    }
  }

  alloc(size: number, dtype: DType): Storage {
    const bytes = bucketBytes(size * 4);
    const reuse = this.pool.get(bytes)?.pop();
    if (reuse) this.pooledBytes -= bytes;
    const buffer = reuse?.buffer ?? this.createBuffer(bytes);
    return new GpuStorage(size, dtype, buffer);
  }

  private createBuffer(bytes: number) {
    this.allocatedBytes += bytes;
    return this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  }

  free(s: Storage): void {
    const { buffer } = s as GpuStorage;
    const list = this.pool.get(buffer.size) ?? [];
    list.push({ buffer, aged: false });
    this.pool.set(buffer.size, list);
    this.pooledBytes += buffer.size;
  }

  /**
   * Destroys pooled buffers that stayed unused since the previous trim. A training step
   * reuses what the previous one freed, so steady loops keep their buffers; bursts of
   * temporaries give their memory back. Destroy waits for queued work that uses a buffer.
   */
  trim(): void {
    for (const [bytes, list] of this.pool) {
      const keep = list.filter((e) => {
        if (!e.aged) return (e.aged = true);
        e.buffer.destroy();
        this.pooledBytes -= bytes;
        this.allocatedBytes -= bytes;
        return false;
      });
      if (keep.length) this.pool.set(bytes, keep);
      else this.pool.delete(bytes);
    }
  }

  write(s: Storage, data: TypedArray): void {
    // queue.writeBuffer runs before any not-yet-submitted commands, which may still use this (pooled) buffer.
    if (this.encoder) this.flush();
    this.device.queue.writeBuffer((s as GpuStorage).buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    // Outside a flush the write would otherwise sit in the scope until the next one; close it now.
    this.closeScopes();
  }

  async read(s: Storage): Promise<TypedArray> {
    const { buffer, size, dtype } = s as GpuStorage;
    const bytes = Math.max(size * 4, 4);
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.getEncoder().copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      await this.checkErrors();
      throw e;
    }
    await this.checkErrors();
    const copy = staging.getMappedRange().slice(0, size * 4);
    staging.destroy();
    return dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  run(k: Kernel, inputs: Storage[], outputs: Storage[]): void {
    this.checkLost();
    const bufs = [...inputs, ...outputs].map((s) => (s as GpuStorage).buffer);
    let site: number | undefined;
    if (k.kind === 'gather' || k.kind === 'scatterAdd') {
      bufs.push(this.flags);
      site = this.sites.push(k);
    }
    const gen = generate(k, inputs as GpuStorage[], outputs as GpuStorage[], bufs, { software: this.software, site });
    if (gen.clearOutputs) {
      this.endPass();
      for (const o of outputs) this.getEncoder().clearBuffer((o as GpuStorage).buffer);
    }
    this.dispatch(gen, bufs);
  }

  private dispatch(gen: Generated, bufs: GPUBuffer[]) {
    const paramBytes = Math.ceil((gen.params.length * 4) / UNIFORM_SLOT) * UNIFORM_SLOT || UNIFORM_SLOT;
    if (this.arenaUsed + paramBytes > ARENA_BYTES) this.flush();
    new Uint32Array(this.arenaData, this.arenaUsed, gen.params.length).set(gen.params);
    const pipeline = this.pipeline(gen.code, gen.entryPoint ?? 'main');
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: this.arenaUsed, size: paramBytes } }];
    gen.bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: bufs[b] } }));
    this.arenaUsed += paramBytes;
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.getPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = gen.workgroups;
    if (x * y * z > 0) pass.dispatchWorkgroups(x, y, z);
  }

  private pipeline(code: string, entryPoint: string): GPUComputePipeline {
    const key = `${entryPoint}\n${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  private getEncoder() {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private getPass() {
    return (this.pass ??= this.getEncoder().beginComputePass());
  }

  private endPass() {
    this.pass?.end();
    this.pass = null;
  }

  flush(): void {
    if (this.encoder) {
      this.endPass();
      if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.arenaUsed = 0;
    }
    this.closeScopes();
  }

  async checkFlags(): Promise<void> {
    if (!this.sites.length) return;
    const sites = this.sites;
    this.sites = [];
    const staging = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    const encoder = this.getEncoder();
    encoder.copyBufferToBuffer(this.flags, 0, staging, 0, 16);
    encoder.clearBuffer(this.flags);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const [site, index, size] = new Int32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    if (site > 0) {
      throw indexError(sites[site - 1], index, size);
    }
  }

  async done(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  private checkLost() {
    if (this.lost) throw new Error(this.lost);
  }

  memory() {
    return { pooledBytes: this.pooledBytes, allocatedBytes: this.allocatedBytes };
  }
}
