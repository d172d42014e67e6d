// WebGPU backend: size-bucketed buffer pool, pipelines and bind-group
// layouts prepared once per kernel structure (codegen.ts kernelKey), one
// command encoder per executed batch (all dispatches of a batch share it and
// its uniform arena), readback only when asked.

import type { DType } from '../../../lib/shape.js';
import type { Backend, CompiledSteps, Launch, Prepared, Storage, TypedArray } from '../backend.js';
import { indexError, type GatherKernel, type Kernel } from '../kernel.js';
import { GATHER_SITE_WORD, generate, kernelKey, launch, type KernelCode } from './codegen.js';

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

interface GpuPrepared extends Prepared, KernelCode {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** Raised for work that was on the device when it was lost; the engine turns it into what was restored and what was lost. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

class GpuStorage implements Storage {
  /** Bumped by every upload and kernel output: the host copy is current while its version matches. */
  version = 0;
  /** Host (CPU memory) copy that a lost device is restored from: an upload's data, or a host copy's readback. */
  host: TypedArray | null = null;
  hostVersion = -1;
  /** The host copy (numbered by hostCopy) this storage's host data belongs to; -1 for an upload's data. */
  hostPoint = -1;
  /** Set on device loss when there was no host copy to restore from: reads and ops on it throw. */
  lost = false;
  constructor(readonly size: number, readonly dtype: DType, public buffer: GPUBuffer) {}
}

/** What a device loss did: why it happened, tensors restored from host copies and tensors lost. */
export interface Recovery {
  why: string;
  /** The host copy the restored state belongs to (see hostCopy); 0 when none was taken yet. */
  point: number;
}


/** Pool buckets: four per doubling, so at most ~19% of a buffer is slack. */
function bucketBytes(bytes: number): number {
  const b = Math.max(bytes, 256);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(p / 4, 256);
  return Math.ceil(b / step) * step;
}

/** What an out-of-range index is reported as. */
type IndexSite = Pick<GatherKernel, 'op' | 'dim' | 'classTargets'>;

/** Kernels that flag out-of-range indices (gathers, and class targets of a cross-entropy): what a flag reports. */
function flagSite(k: Kernel): IndexSite | null {
  if (k.kind === 'gather' || k.kind === 'scatterAdd') return k;
  if (k.kind === 'classes' && k.mode !== 'hits') return { op: k.op, dim: 1, classTargets: true };
  return null;
}

const UNIFORM_SLOT = 256;
const ARENA_BYTES = 1 << 20;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  /** Free buffers by size; `aged` marks those that already sat through one trim unused. */
  private pool = new Map<number, { buffer: GPUBuffer; aged: boolean }[]>();
  private pooledBytes = 0;
  private allocatedBytes = 0;
  private prepared = new Map<string, GpuPrepared>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaData = new ArrayBuffer(ARENA_BYTES);
  private arenaUsed = 0;
  /** Set when the device is gone for good (a new one could not be opened): every call throws it. */
  lost: string | null = null;
  /** Storages allocated and not freed: what a lost device must restore. */
  private live = new Set<GpuStorage>();
  /** Host copies committed so far; storages restore to the latest. */
  private point = 0;
  /** While a lost device is being replaced: callers wait for it (resolves with what happened). */
  recovery: Promise<Recovery> | null = null;
  /** Whether uploads keep their data as host copies (off when the engine keeps no host copies). */
  keepHostCopies = true;
  /** Called once the engine runs on a new device, before anything else touches it. */
  onRecovered: (r: Recovery) => void = () => {};
  /** Errors the device reported for work since the last check: out-of-memory or validation, captured per flush. */
  private scopeErrors: Promise<GPUError | null>[] = [];
  readonly maxBufferBytes: number;
  readonly maxStorageBindings: number;
  /** [site, index, size] of the first out-of-range index a gather kernel met (see gather.wgsl); zero when none. */
  private flags: GPUBuffer;
  /** The kernel each site number (1-based) stands for, since the last check. */
  private sites: IndexSite[] = [];

  private device: GPUDevice;
  private software: boolean;

  /** `reopen` opens a new device after a device loss (a driver reset, a GPU process crash). */
  constructor({ device, software }: GpuDevice, private readonly reopen?: () => Promise<GpuDevice>) {
    this.device = device;
    this.software = software;
    // A buffer is bound whole, so the binding limit caps a tensor as much as the buffer limit does.
    this.maxBufferBytes = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
    this.maxStorageBindings = device.limits.maxStorageBuffersPerShaderStage;
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.flags = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.watch(device);
    this.openScopes();
  }

  private watch(device: GPUDevice) {
    device.lost.then((info) => {
      if (device !== this.device || info.reason === 'destroyed') return;
      const why = info.message.trim() || 'no reason given';
      if (!this.reopen) {
        this.lost = `shadenet: the WebGPU device was lost (${why}); its tensors and models are lost, checkpoints are intact. Call sn.init() to start a new engine`;
        return;
      }
      this.recovery = this.recover(why);
      this.recovery.then(this.onRecovered, () => {}).finally(() => (this.recovery = null));
    });
  }

  /**
   * Opens a new device and rebuilds everything on it: pool, pipelines, uniform arena. Every
   * live storage gets a new buffer holding its host copy; one without a current host copy
   * (computed after the last hostCopy) is marked lost.
   */
  private async recover(why: string): Promise<Recovery> {
    let next: GpuDevice;
    try {
      next = await this.reopen!();
    } catch (e) {
      this.lost = `shadenet: the WebGPU device was lost (${why}) and no new one could be opened (${e instanceof Error ? e.message : String(e)}); its tensors and models are lost, checkpoints are intact. Call sn.init() to start a new engine`;
      throw new Error(this.lost);
    }
    this.device = next.device;
    this.pool.clear();
    this.pooledBytes = this.allocatedBytes = 0;
    this.prepared.clear();
    this.encoder = this.pass = null;
    this.arenaUsed = 0;
    this.scopeErrors = [];
    this.sites = [];
    this.arena = this.device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.flags = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.watch(this.device);
    this.openScopes();
    for (const s of this.live) {
      s.buffer = this.createBuffer(bucketBytes(s.size * 4));
      if (s.host && (s.version === s.hostVersion || s.hostPoint === this.point)) {
        this.device.queue.writeBuffer(s.buffer, 0, s.host.buffer, s.host.byteOffset, Math.min(s.host.byteLength, s.size * 4));
        s.version = s.hostVersion;
      } else {
        s.lost = true;
      }
    }
    this.closeScopes();
    return { why, point: this.point };
  }

  /** Whether a device loss left this storage without data (see recover). */
  isLost(s: Storage): boolean {
    return (s as GpuStorage).lost;
  }

  /**
   * Copies `storages` to host memory as one consistent point: every copy is queued before any
   * later work. Only storages changed since their last host copy are read back. Resolves once
   * the copy is committed (a device lost before then restores the previous one) with its number.
   */
  async hostCopy(storages: Storage[]): Promise<number> {
    const set = new Set(storages as GpuStorage[]);
    const reads: [GpuStorage, number, Promise<TypedArray>][] = [];
    for (const s of set) {
      if (s.lost || s.version === s.hostVersion) continue;
      reads.push([s, s.version, this.read(s)]);
    }
    const copies = await Promise.all(reads.map(([, , r]) => r));
    const point = ++this.point;
    reads.forEach(([s, version], i) => {
      s.host = copies[i];
      s.hostVersion = version;
    });
    for (const s of set) if (s.host) s.hostPoint = point;
    return point;
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
    // A lost device may reject these; that loss is reported by recovery, not as a stray rejection.
    this.scopeErrors.push(this.device.popErrorScope().catch(() => null), this.device.popErrorScope().catch(() => null));
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
    if (this.recovery) throw new DeviceLostError('the WebGPU device was lost while this work ran');
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
    const s = new GpuStorage(size, dtype, buffer);
    this.live.add(s);
    return s;
  }

  private createBuffer(bytes: number) {
    this.allocatedBytes += bytes;
    return this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  }

  free(s: Storage): void {
    this.live.delete(s as GpuStorage);
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
    const g = s as GpuStorage;
    this.device.queue.writeBuffer(g.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    // The uploaded data is its host copy: the page transferred it, nothing else writes it.
    g.host = this.keepHostCopies ? data : null;
    g.hostVersion = ++g.version;
    g.hostPoint = -1;
    g.lost = false;
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
    await this.mapForRead(staging);
    await this.checkErrors();
    const copy = staging.getMappedRange().slice(0, size * 4);
    staging.destroy();
    return dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  /** Maps a staging buffer for reading; a failure because the device was lost is a DeviceLostError. */
  private async mapForRead(staging: GPUBuffer) {
    const device = this.device;
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      await this.checkErrors();
      // A mapping fails before the device reports its loss: wait a moment for that report.
      if (await Promise.race([device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))])) {
        throw new DeviceLostError('the WebGPU device was lost during a read');
      }
      throw e;
    }
  }


  /** Outputs change: their host copies are stale; a map over a whole lost storage holds data again. */
  private written(k: Kernel, outputs: Storage[]) {
    for (const o of outputs as GpuStorage[]) {
      o.version++;
      if (o.lost && k.kind === 'map' && k.shape.reduce((a, b) => a * b, 1) === o.size) o.lost = false;
    }
  }

  /** The kernel's buffers in binding order: inputs, outputs, then the flag buffer for gathers. */
  private buffersOf(k: Kernel, inputs: Storage[], outputs: Storage[]) {
    const bufs = [...inputs, ...outputs].map((s) => (s as GpuStorage).buffer);
    if (flagSite(k)) bufs.push(this.flags);
    return bufs;
  }

  prepare(k: Kernel, inputs: Storage[], outputs: Storage[]): Prepared {
    const bufs = this.buffersOf(k, inputs, outputs);
    const key = kernelKey(k, inputs, outputs, bufs, { software: this.software });
    let p = this.prepared.get(key);
    if (!p) {
      const gen = generate(k, inputs, outputs, bufs, { software: this.software });
      const module = this.device.createShaderModule({ code: gen.code });
      const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: gen.entryPoint ?? 'main' } });
      p = { key, ...gen, pipeline, layout: pipeline.getBindGroupLayout(0) };
      this.prepared.set(key, p);
    }
    return p;
  }

  dispatch(prepared: Prepared, k: Kernel, inputs: Storage[], outputs: Storage[]): void {
    this.checkLost();
    this.written(k, outputs);
    const p = prepared as GpuPrepared;
    const bufs = this.buffersOf(k, inputs, outputs);
    const flagged = flagSite(k);
    const site = flagged ? this.sites.push(flagged) : undefined;
    const { params, workgroups } = launch(k, { software: this.software, site });
    if (p.clearOutputs) {
      this.endPass();
      for (const o of outputs) this.getEncoder().clearBuffer((o as GpuStorage).buffer);
    }
    const paramBytes = Math.ceil((params.length * 4) / UNIFORM_SLOT) * UNIFORM_SLOT || UNIFORM_SLOT;
    if (this.arenaUsed + paramBytes > ARENA_BYTES) this.flush();
    new Uint32Array(this.arenaData, this.arenaUsed, params.length).set(params);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: this.arenaUsed, size: paramBytes } }];
    p.bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: bufs[b] } }));
    this.arenaUsed += paramBytes;
    const pass = this.getPass();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, this.device.createBindGroup({ layout: p.layout, entries }));
    const [x, y, z] = workgroups;
    if (x * y * z > 0) pass.dispatchWorkgroups(x, y, z);
  }

  /**
   * A plan's launches with their bind groups made once, over one uniform buffer holding
   * every launch's parameters. A replay re-uploads those only where a kernel changed, then
   * encodes the dispatches into the current pass: one encoder, one submit per step.
   */
  compile(launches: Launch[]): CompiledSteps {
    const software = this.software;
    const steps = launches.map((l) => {
      const p = l.prepared as GpuPrepared;
      return { p, ...launch(l.kernel, { software }), bufs: this.buffersOf(l.kernel, l.inputs, l.outputs), inputs: l.inputs, outputs: l.outputs as GpuStorage[], kernel: l.kernel, slot: 0 };
    });
    let bytes = 0;
    for (const st of steps) {
      st.slot = bytes;
      bytes += Math.ceil((st.params.length * 4) / UNIFORM_SLOT) * UNIFORM_SLOT || UNIFORM_SLOT;
    }
    const words = new Uint32Array(Math.max(bytes, UNIFORM_SLOT) / 4);
    for (const st of steps) words.set(st.params, st.slot / 4);
    const uniforms = this.device.createBuffer({ size: words.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(uniforms, 0, words);
    const group = (st: (typeof steps)[number]) => {
      const size = Math.ceil((st.params.length * 4) / UNIFORM_SLOT) * UNIFORM_SLOT || UNIFORM_SLOT;
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniforms, offset: st.slot, size } }];
      st.p.bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: st.bufs[b] } }));
      return this.device.createBindGroup({ layout: st.p.layout, entries });
    };
    const groups = steps.map(group);
    // The encoder the last replay went into: its uniforms must be submitted before they are overwritten.
    let lastEncoder: GPUCommandEncoder | null = null;
    return {
      replay: (changed) => {
        this.checkLost();
        if (lastEncoder && lastEncoder === this.encoder) this.flush();
        let dirty = false;
        for (const [i, k] of changed) {
          const next = launch(k, { software });
          words.set(next.params, steps[i].slot / 4);
          steps[i].workgroups = next.workgroups;
          dirty = true;
        }
        // Gathers get fresh flag sites, as dispatch() gives them.
        for (const { kernel: k, slot } of steps) {
          const flagged = flagSite(k);
          if (!flagged) continue;
          words[slot / 4 + GATHER_SITE_WORD] = this.sites.push(flagged);
          dirty = true;
        }
        if (dirty) this.device.queue.writeBuffer(uniforms, 0, words);
        steps.forEach((st, i) => {
          this.written(st.kernel, st.outputs);
          if (st.p.clearOutputs) {
            this.endPass();
            for (const o of st.outputs) this.getEncoder().clearBuffer(o.buffer);
          }
          const pass = this.getPass();
          pass.setPipeline(st.p.pipeline);
          pass.setBindGroup(0, groups[i]);
          const [x, y, z] = st.workgroups;
          if (x * y * z > 0) pass.dispatchWorkgroups(x, y, z);
        });
        lastEncoder = this.encoder;
      },
      rebind: (moved) => {
        steps.forEach((st, i) => {
          if (![...st.inputs, ...st.outputs].some((s) => moved.has(s))) return;
          st.inputs = st.inputs.map((s) => moved.get(s) ?? s);
          st.outputs = st.outputs.map((s) => (moved.get(s) ?? s) as GpuStorage);
          st.bufs = this.buffersOf(st.kernel, st.inputs, st.outputs);
          groups[i] = group(st);
        });
      },
      dispose: () => {
        if (lastEncoder && lastEncoder === this.encoder) this.flush();
        uniforms.destroy();
      },
    };
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
    await this.mapForRead(staging);
    const [site, index, size] = new Int32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    if (site > 0) {
      throw indexError(sites[site - 1], index, size);
    }
  }

  async done(): Promise<void> {
    // A lost device may reject this; checkErrors then says so.
    await this.device.queue.onSubmittedWorkDone().catch(() => {});
    await this.checkErrors();
  }

  private checkLost() {
    if (this.lost) throw new Error(this.lost);
  }

  memory() {
    return { pooledBytes: this.pooledBytes, allocatedBytes: this.allocatedBytes };
  }
}
