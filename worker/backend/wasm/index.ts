// The CPU backend in WebAssembly SIMD: every storage lives in one
// WebAssembly.Memory (heap.ts: pooled, so no per-op allocation or copy),
// map kernels are generated loops (map.ts, cached by the kernel's structure),
// GEMM, reductions and softmax are hand-written (assembly/kernels.ts, built
// by `npm run build`). Work runs synchronously inside `run`, in the worker;
// when the page is cross-origin isolated, GEMM rows are split over helper
// workers sharing the memory (threads.ts).

import type { Activation } from '../../../lib/ops/activations.js';
import type { DType } from '../../../lib/shape.js';
import { sizeOf, stridesOf } from '../../../lib/shape.js';
import { sequentialSteps, type Backend, type Launch, type Prepared, type Storage, type TypedArray } from '../backend.js';
import { attention, colSums, pool, rand } from '../cpu/index.js';
import { classesKernel } from '../classes.js';
import { activationExpr, f, indexError, operandStorages, plainOperands, prologueMap, segmentMap, x, type Epilogue, type Prologue, type Expr, type GatherKernel, type Kernel, type MapKernel, type MatmulKernel, type ReduceKernel, type View } from '../kernel.js';
import kernelsWasm from './assembly/kernels.wasm';
import kernelsSharedWasm from './assembly/kernels-shared.wasm';
import { convWasm, type ConvHost } from './conv.js';
import { MAX_PAGES } from './emit.js';
import { Heap } from './heap.js';
import { compileMap, type MapProgram, type StrideKind } from './map.js';
import { Threads } from './threads.js';

/** A map kernel's loop and the collapsed layout it walks; the other kinds run hand-written kernels. */
interface WasmPrepared extends Prepared {
  /** A map kernel's loop; for a reduce, its prologue's; for a matmul, its epilogue's when the GEMM cannot apply it. */
  map?: { program: MapProgram; shape: number[]; strides: number[][]; kinds: StrideKind[] };
  /** A multimap kernel's segments, each run as its map kernel. */
  segments?: WasmPrepared['map'][];
  /** A matmul epilogue the GEMM applies itself. */
  gemm?: { bias: View | null; act: number };
}

/** A matmul's epilogue as a map kernel over C (input 0) and the epilogue's inputs, written in place. */
function epilogueMap(k: MatmulKernel): MapKernel {
  const shape = [k.batch, k.m, k.n];
  const dense = { shape, strides: [k.m * k.n, k.n, 1], offset: 0 };
  const epi = k.epilogue!;
  return { kind: 'map', shape, exprs: [epi.expr], inputs: [dense, ...epi.inputs], inDtypes: ['float32', ...epi.inDtypes], outputs: [dense], dtype: 'float32' };
}

const NOTHING_TO_PREPARE: WasmPrepared = { key: '' };

class WasmStorage implements Storage {
  constructor(readonly size: number, readonly dtype: DType, readonly ptr: number) {}
}

/**
 * Memory layout: the kernels module's constants from 1024 (--memoryBase, under 12 KiB),
 * the threads' control block at CONTROL, storages from HEAP_BASE.
 */
const CONTROL = 61440;
const HEAP_BASE = 65536;
/**
 * GEMMs smaller than this many multiply-adds (about 0.1 ms on one thread) stay on one:
 * a hand-over costs tens of microseconds, and far more on a busy machine.
 */
const THREADED_GEMM_MACS = 1 << 22;

/** The codes assembly/kernels.ts's GEMM store switches on (0: none); typed so a new epilogue activation must get one. */
const ACTIVATION_CODES: Record<Activation, number> = { relu: 1, sigmoid: 2, tanh: 3, gelu: 4 };

/**
 * An epilogue the GEMM applies itself: activation(acc [+ bias]) with a float32 bias read
 * densely along N (its view's offset in elements), or null.
 */
function fixedEpilogue(e: Epilogue): { bias: View | null; act: number } | null {
  const biasView = e.inputs.length === 1 && e.inDtypes[0] === 'float32' && e.inputs[0].strides[0] === 0 && e.inputs[0].strides[1] === 0 && e.inputs[0].strides[2] === 1 ? e.inputs[0] : null;
  if (e.inputs.length && !biasView) return null;
  const pre: Expr = biasView ? f('add', x(0), x(1)) : x(0);
  const key = JSON.stringify(e.expr);
  if (key === JSON.stringify(pre)) return { bias: biasView, act: 0 };
  const act = (Object.keys(ACTIVATION_CODES) as Activation[]).find((a) => JSON.stringify(activationExpr(a, pre)) === key);
  return act ? { bias: biasView, act: ACTIVATION_CODES[act] } : null;
}

const REDUCE_OPS = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 } as const;

interface KernelExports {
  gemm(a: number, ars: number, acs: number, b: number, brs: number, bcs: number, c: number, bias: number, act: number,
    n: number, k: number, r0: number, r1: number, scratch: number): void;
  gemmScratchBytes(n: number): number;
  reduceSumF32(x: number, out: number, outer: number, n: number, inner: number, scale: number): void;
  reduceScalar(x: number, out: number, outer: number, n: number, inner: number, op: number, isInt: number): void;
  softmax(x: number, out: number, outer: number, n: number, inner: number, log: number): void;
}

/**
 * Compiles the kernels module and, where the page is cross-origin isolated, starts
 * `threads - 1` helpers. The default, half the cores (1 to 4, as TF.js's wasm backend),
 * leaves the page and the browser a core: on 2 cores, 2 compute threads made the page
 * stall. Throws where WebAssembly compilation is refused (a CSP without 'wasm-unsafe-eval').
 */
export async function createWasmBackend(opts: { threads?: number } = {}): Promise<WasmBackend> {
  const cores = (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 1;
  const wanted = Math.max(1, Math.floor(opts.threads ?? Math.min(4, cores / 2)));
  // Helpers can only share memory with a cross-origin isolated page (COOP + COEP headers).
  const shared = wanted > 1 && !!globalThis.crossOriginIsolated;
  const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, ...(shared ? { shared: true } : {}) });
  const module = new WebAssembly.Module(shared ? kernelsSharedWasm : kernelsWasm);
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  let threads: Threads | null = null;
  if (shared) {
    try {
      threads = await Threads.start(module, memory, CONTROL, wanted, instance.exports.gemm as (...args: number[]) => void);
    } catch (e) {
      console.warn(`shadenet: ${e instanceof Error ? e.message : e}; the wasm backend runs on one thread`);
    }
  }
  return new WasmBackend(memory, shared, instance.exports, threads);
}

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  /** The heap ends where 32-bit WebAssembly memory does (MAX_PAGES). */
  readonly maxBufferBytes = MAX_PAGES * 65536 - HEAP_BASE;
  private kernels: KernelExports;
  private heap: Heap;
  private maps = new Map<string, MapProgram>();
  private f32 = new Float32Array(0);
  private i32 = new Int32Array(0);

  constructor(private wasmMemory: WebAssembly.Memory, private shared: boolean, private exports: WebAssembly.Exports, private helpers: Threads | null) {
    this.kernels = exports as unknown as KernelExports;
    this.heap = new Heap(wasmMemory, HEAP_BASE, MAX_PAGES);
  }

  /** Threads GEMM runs on. */
  get threads() {
    return this.helpers?.count ?? 1;
  }

  alloc(size: number, dtype: DType): Storage {
    return new WasmStorage(size, dtype, this.heap.alloc(size * 4));
  }
  free(s: Storage): void {
    this.heap.free((s as WasmStorage).ptr, s.size * 4);
  }
  write(s: Storage, data: TypedArray): void {
    const { ptr } = s as WasmStorage;
    this.refreshViews();
    (data instanceof Int32Array ? this.i32 : this.f32).set(data, ptr >> 2);
  }
  async read(s: Storage): Promise<TypedArray> {
    return this.view(s).slice();
  }
  compile(launches: Launch[]) {
    return sequentialSteps(this, launches);
  }
  flush(): void {}
  async done(): Promise<void> {}
  /** Out-of-range indices already threw where they were read. */
  async checkFlags(): Promise<void> {}
  trim(): void {
    this.heap.trim();
  }
  memory() {
    return { pooledBytes: this.heap.pooledBytes, allocatedBytes: this.heap.usedBytes };
  }

  /** A typed view of a storage's elements (valid until memory grows). */
  private view(s: Storage): TypedArray {
    const { ptr, size, dtype } = s as WasmStorage;
    this.refreshViews();
    return (dtype === 'int32' ? this.i32 : this.f32).subarray(ptr >> 2, (ptr >> 2) + size);
  }
  private refreshViews() {
    const buf = this.wasmMemory.buffer;
    if (this.f32.buffer !== buf || this.f32.length * 4 !== buf.byteLength) {
      this.f32 = new Float32Array(buf);
      this.i32 = new Int32Array(buf);
    }
  }

  /**
   * Map kernels (and a reduce's prologue, and a matmul epilogue the GEMM cannot apply, run as
   * maps): the views' layout collapsed and the loop for its innermost stride kinds, compiled
   * once per structure. The layout belongs to this kernel's views, so the result serves
   * dispatches of this kernel (a step plan replays the same kernels).
   */
  prepare(k: Kernel): WasmPrepared {
    if (k.kind === 'reduce' && k.prologue) return this.prepare(prologueMap(k.prologue, k.dtype));
    if (k.kind === 'matmul') {
      const gemm = k.epilogue ? fixedEpilogue(k.epilogue) : { bias: null, act: 0 };
      return gemm ? { key: `gemm ${gemm.act}`, gemm } : this.prepare(epilogueMap(k));
    }
    if (k.kind === 'multimap') {
      const segments = k.segments.map((seg) => this.prepare(segmentMap(k, seg)));
      return { key: `multimap ${segments.map((p) => p.key).join(';')}`, segments: segments.map((p) => p.map) };
    }
    if (k.kind !== 'map' || sizeOf(k.shape) === 0) return NOTHING_TO_PREPARE;
    const { shape, strides } = collapse(k.shape, [...k.inputs, ...k.outputs]);
    const inner = shape.length - 1;
    const kind = (s: number): StrideKind => (s === 0 ? '0' : s === 1 ? '1' : 's');
    const inKinds = k.inputs.map((_, j) => kind(strides[j][inner]));
    const outKinds = k.outputs.map((_, j) => kind(strides[k.inputs.length + j][inner]));
    const key = JSON.stringify([k.exprs, k.dtype, k.inDtypes, inKinds, outKinds]);
    let program = this.maps.get(key);
    if (!program) this.maps.set(key, (program = compileMap(k, inKinds, outKinds, this.wasmMemory, this.shared, this.exports)));
    return { key, map: { program, shape, strides, kinds: [...inKinds, ...outKinds] } };
  }

  dispatch(prepared: Prepared, k: Kernel, inputs: Storage[], outputs: Storage[]): void {
    const ptr = (s: Storage) => (s as WasmStorage).ptr;
    switch (k.kind) {
      case 'map': {
        const { map } = prepared as WasmPrepared;
        return map && this.map(k, map, inputs.map(ptr), outputs.map(ptr));
      }
      case 'multimap': {
        const { segments } = prepared as WasmPrepared;
        k.segments.forEach((seg, i) => {
          const map = segments![i];
          if (map) this.map(segmentMap(k, seg), map, seg.inputs.map((p) => ptr(inputs[p.storage])), seg.outputs.map((p) => ptr(outputs[p.storage])));
        });
        return;
      }
      case 'reduce': {
        const { map } = prepared as WasmPrepared;
        if (!k.prologue) return this.reduce(k, ptr(inputs[0]), ptr(outputs[0]));
        // The prologue's loop fills a scratch buffer the reduction then reads.
        const size = Math.max(1, k.outer * k.n * k.inner);
        const scratch = this.heap.alloc(size * 4);
        try {
          if (map) this.map(prologueMap(k.prologue, k.dtype), map, inputs.map(ptr), [scratch]);
          return this.reduce(k, scratch, ptr(outputs[0]));
        } finally {
          this.heap.free(scratch, size * 4);
        }
      }
      case 'matmul': {
        const sums = k.colSums ? ptr(outputs[1]) : 0;
        if (!k.aPrologue && !k.bPrologue) return this.matmul(k, prepared as WasmPrepared, ptr(inputs[0]), ptr(inputs[1]), inputs.slice(2).map(ptr), ptr(outputs[0]), sums);
        // Prologue operands are computed into scratch buffers the GEMM then reads.
        const [na, nb] = operandStorages(k);
        const scratch: [number, number][] = [];
        const operand = (p: Prologue | undefined, from: number, count: number) => {
          if (!p) return ptr(inputs[from]);
          const bytes = Math.max(1, sizeOf(p.shape)) * 4;
          const at = this.heap.alloc(bytes);
          scratch.push([at, bytes]);
          const { map } = this.prepare(prologueMap(p, 'float32'));
          if (map) this.map(prologueMap(p, 'float32'), map, inputs.slice(from, from + count).map(ptr), [at]);
          return at;
        };
        try {
          return this.matmul(plainOperands(k), prepared as WasmPrepared, operand(k.aPrologue, 0, na), operand(k.bPrologue, na, nb), inputs.slice(na + nb).map(ptr), ptr(outputs[0]), sums);
        } finally {
          for (const [at, bytes] of scratch) this.heap.free(at, bytes);
        }
      }
      case 'softmax': return this.kernels.softmax(ptr(inputs[0]), ptr(outputs[0]), k.outer, k.n, k.inner, +k.log);
      case 'gather': return gatherRows(k, this.view(inputs[0]), this.view(inputs[1]) as Int32Array, this.view(outputs[0]));
      case 'scatterAdd': return gatherRows(k, this.view(inputs[0]), this.view(inputs[1]) as Int32Array, this.view(outputs[0]));
      case 'rand': return rand(k, this.view(outputs[0]));
      case 'conv': return convWasm(this.convHost, k, inputs.map(ptr), ptr(outputs[0]));
      // Pooling reads a few values per output: the oracle's loops on the heap.
      case 'pool': return pool(k, inputs.map((s) => this.view(s)), this.view(outputs[0]));
      case 'classes': return classesKernel(k, inputs.map((s) => this.view(s)), outputs.map((s) => this.view(s)));
      // The oracle's loops on the heap (the fused lowering runs only when sn.init asks for it).
      case 'attention': return attention(k, inputs.map((s) => this.view(s)), outputs.map((s) => this.view(s)));
      case 'scan': throw new Error('wasm: scan kernels are not dispatched here; the recurrent op runs its steps as ops on wasm');
    }
  }

  /** Scratch memory and GEMM for conv kernels, which lower to im2col + GEMM (conv.ts). */
  private convHost: ConvHost = {
    alloc: (floats) => this.heap.alloc(floats * 4),
    free: (ptr, floats) => this.heap.free(ptr, floats * 4),
    f32: () => {
      this.refreshViews();
      return this.f32;
    },
    gemm: (k, a, b, bias, activation, c) => this.gemm(k, a, b, bias, activation ? ACTIVATION_CODES[activation] : 0, c),
  };

  private reduce(k: ReduceKernel, x: number, out: number) {
    if (k.outer * k.inner === 0) return;
    if (k.op === 'sum' && k.dtype === 'float32') this.kernels.reduceSumF32(x, out, k.outer, k.n, k.inner, k.scale);
    else this.kernels.reduceScalar(x, out, k.outer, k.n, k.inner, REDUCE_OPS[k.op], +(k.dtype === 'int32'));
  }

  /** `sums`: where B's column sums go when the kernel asks for them (k.colSums). */
  private matmul(k: MatmulKernel, prepared: WasmPrepared, a: number, b: number, extra: number[], c: number, sums: number) {
    if (k.batch * k.m * k.n === 0) return;
    if (k.colSums) this.colSums(k, b, sums);
    const { gemm, map } = prepared;
    const bias = gemm?.bias ? extra[0] + gemm.bias.offset * 4 : 0;
    this.gemm(k, a, b, bias, gemm?.act ?? 0, c);
    if (gemm) return;
    // Any other epilogue is a loop over C after the GEMM.
    if (map) this.map(epilogueMap(k), map, [c, ...extra], [c]);
  }

  /** B's column sums: the sum reduction's own kernel where B is dense rows, else the cpu oracle's loop over the heap. */
  private colSums(k: MatmulKernel, b: number, out: number) {
    const { offset, rowStride, colStride } = k.b;
    if (colStride === 1 && rowStride === k.n) return this.kernels.reduceSumF32(b + offset * 4, out, 1, k.k, k.n, 1);
    this.refreshViews();
    colSums(k, this.f32.subarray(b / 4), this.f32.subarray(out / 4));
  }

  private gemm(k: MatmulKernel, a: number, b: number, bias: number, act: number, c: number) {
    const scratchBytes = this.kernels.gemmScratchBytes(k.n);
    const threaded = this.helpers && k.m >= 8 && k.batch * k.m * k.n * k.k >= THREADED_GEMM_MACS;
    if (threaded) {
      const scratch = this.heap.alloc(scratchBytes * this.helpers!.count);
      this.helpers!.runGemm({
        a: a + k.a.offset * 4, ars: k.a.rowStride, acs: k.a.colStride, aBatchStride: k.a.batchStride,
        b: b + k.b.offset * 4, brs: k.b.rowStride, bcs: k.b.colStride, bBatchStride: k.b.batchStride,
        c, bias, act, batch: k.batch, m: k.m, n: k.n, k: k.k, scratch, scratchBytes,
      });
      this.heap.free(scratch, scratchBytes * this.helpers!.count);
      return;
    }
    const scratch = this.heap.alloc(scratchBytes);
    for (let bt = 0; bt < k.batch; bt++) {
      this.kernels.gemm(
        a + (k.a.offset + bt * k.a.batchStride) * 4, k.a.rowStride, k.a.colStride,
        b + (k.b.offset + bt * k.b.batchStride) * 4, k.b.rowStride, k.b.colStride,
        c + bt * k.m * k.n * 4, bias, act, k.n, k.k, 0, k.m, scratch,
      );
    }
    this.heap.free(scratch, scratchBytes);
  }

  private map(k: MapKernel, { program, shape, strides, kinds }: NonNullable<WasmPrepared['map']>, ins: number[], outs: number[]) {
    const inner = shape.length - 1;
    const views = [...k.inputs, ...k.outputs];
    const base = [...ins, ...outs].map((p, j) => p + views[j].offset * 4);
    const args: number[] = [];
    const offsets = base.slice();
    const idx = new Array<number>(inner).fill(0);
    const outerCount = sizeOf(shape.slice(0, inner));
    for (let o = 0; o < outerCount; o++) {
      args.length = 0;
      for (let j = 0; j < offsets.length; j++) {
        args.push(offsets[j]);
        if (kinds[j] === 's') args.push(strides[j][inner] * 4);
      }
      args.push(shape[inner]);
      program.run(...args);
      // Advance the outer multi-index, keeping every view's offset in step.
      for (let d = inner - 1; d >= 0; d--) {
        idx[d]++;
        for (let j = 0; j < offsets.length; j++) offsets[j] += strides[j][d] * 4;
        if (idx[d] < shape[d]) break;
        for (let j = 0; j < offsets.length; j++) offsets[j] -= strides[j][d] * shape[d] * 4;
        idx[d] = 0;
      }
    }
  }
}

/**
 * Drops size-1 axes and merges neighbours that every view walks contiguously,
 * so most maps become one call over a single axis.
 */
function collapse(shape: number[], views: View[]): { shape: number[]; strides: number[][] } {
  const out: number[] = [];
  const strides: number[][] = views.map(() => []);
  shape.forEach((size, d) => {
    if (size === 1) return;
    const last = out.length - 1;
    if (last >= 0 && views.every((v, j) => strides[j][last] === v.strides[d] * size)) {
      out[last] *= size;
      views.forEach((v, j) => { strides[j][last] = v.strides[d]; });
      return;
    }
    out.push(size);
    views.forEach((v, j) => strides[j].push(v.strides[d]));
  });
  if (!out.length) return { shape: [1], strides: views.map(() => [0]) };
  return { shape: out, strides };
}

/**
 * gather (out[p] = x[p with coord[dim] := index[p]]) and scatterAdd (its reverse: out is
 * input-shaped, zeroed, and receives x[p] there) a row of the last axis at a time.
 */
function gatherRows(k: GatherKernel, x: TypedArray, index: Int32Array, out: TypedArray) {
  const scatter = k.kind === 'scatterAdd';
  if (scatter) out.fill(0);
  const indexShape = k.indexShape.length ? k.indexShape : [1];
  const inStrides = stridesOf(k.inputShape.length ? k.inputShape : [1]);
  const last = indexShape.length - 1;
  const n = indexShape[last];
  const total = sizeOf(indexShape);
  if (total === 0) return;
  const dimSize = (k.inputShape.length ? k.inputShape : [1])[k.dim];
  const dimStride = inStrides[k.dim];
  // Along the last axis the target moves by one element, unless that axis is `dim` (then the index says where).
  const step = k.dim === last ? 0 : 1;
  const coord = new Array<number>(last).fill(0);
  for (let p = 0; p < total; p += n) {
    let base = 0;
    for (let d = 0; d < last; d++) if (d !== k.dim) base += coord[d] * inStrides[d];
    for (let j = 0; j < n; j++) {
      const c = index[p + j];
      if (c < 0 || c >= dimSize) throw indexError(k, c, dimSize);
      const t = base + c * dimStride + j * step;
      if (scatter) out[t] += x[p + j];
      else out[p + j] = x[t];
    }
    for (let d = last - 1; d >= 0; d--) {
      if (++coord[d] < indexShape[d]) break;
      coord[d] = 0;
    }
  }
}
