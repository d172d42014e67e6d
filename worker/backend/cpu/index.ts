// Reference backend in plain TypeScript: the oracle for the WebGPU kernels
// and the fallback where WebGPU is missing. Float math is rounded to float32
// on store, so results match the GPU up to rounding inside expressions.

import type { DType } from '../../../lib/shape.js';
import { sizeOf } from '../../../lib/shape.js';
import { sequentialSteps, type Backend, type Launch, type Prepared, type Storage, type TypedArray } from '../backend.js';
import {
  ELEMENTWISE, activationExpr, indexError, operandStorages, plainOperands, prologueMap, segmentMap, uniformAt,
  type AttentionKernel, type ConvKernel, type PoolKernel, type Expr, type View, type Prologue, type GatherKernel, type Kernel, type MapKernel, type MatmulKernel, type RandKernel, type ReduceKernel, type SoftmaxKernel,
} from '../kernel.js';
import { classesKernel } from '../classes.js';
import { loopGemm, scan } from '../scan.js';

class CpuStorage implements Storage {
  data: TypedArray;
  constructor(readonly size: number, readonly dtype: DType) {
    this.data = dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
  }
}

type Eval = (vals: number[]) => number;

/**
 * Float expressions round every step to float32, as the GPU computes, so a fused
 * chain gives what the same ops one kernel each give. int32 ones compute exactly in
 * float64 (truncated on store).
 */
function compile(e: Expr, dtype: DType = 'float32'): Eval {
  if ('in' in e) { const i = e.in; return (v) => v[i]; }
  if ('c' in e) { const c = dtype === 'float32' ? Math.fround(e.c) : e.c; return () => c; }
  const js = ELEMENTWISE[e.op]?.js;
  if (!js) throw new Error(`unknown elementwise op '${e.op}'`);
  const args = e.args.map((a) => compile(a, dtype));
  const r = dtype === 'float32' ? Math.fround : (y: number) => y;
  if (args.length === 1) { const [a] = args; return (v) => r(js(a(v))); }
  if (args.length === 2) { const [a, b] = args; return (v) => r(js(a(v), b(v))); }
  return (v) => r(js(...args.map((a) => a(v))));
}

/** Map kernels, reduce prologues and matmul epilogues compile their expressions to closures; the rest need nothing prepared. */
interface CpuPrepared extends Prepared {
  fns?: Eval[];
}

const NOTHING_TO_PREPARE: CpuPrepared = { key: '' };

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  /** Typed arrays of 2^31 elements and more are refused or unwieldy in browsers. */
  readonly maxBufferBytes = 2 ** 31 - 4;
  private allocated = 0;
  private compiled = new Map<string, CpuPrepared>();

  alloc(size: number, dtype: DType): Storage {
    let s: CpuStorage;
    try {
      s = new CpuStorage(size, dtype);
    } catch (e) {
      throw new RangeError(`out of memory: could not allocate ${(size * 4).toLocaleString('en-US')} bytes for a tensor (${(e as Error).message})`);
    }
    this.allocated += size * 4;
    return s;
  }
  free(s: Storage): void {
    this.allocated -= s.size * 4;
  }
  write(s: Storage, data: TypedArray): void {
    (s as CpuStorage).data.set(data);
  }
  async read(s: Storage): Promise<TypedArray> {
    return (s as CpuStorage).data.slice();
  }
  compile(launches: Launch[]) {
    return sequentialSteps(this, launches);
  }
  flush(): void {}
  async done(): Promise<void> {}
  /** Out-of-range indices already threw where they were read. */
  async checkFlags(): Promise<void> {}
  trim(): void {}
  memory() {
    return { pooledBytes: 0, allocatedBytes: this.allocated };
  }

  prepare(k: Kernel): Prepared {
    const [exprs, dtype]: [Expr[], DType] | [] =
      k.kind === 'map' ? [k.exprs, k.dtype]
      : k.kind === 'multimap' ? [k.exprs, 'float32']
      : k.kind === 'reduce' && k.prologue ? [[k.prologue.expr], k.dtype]
      : k.kind === 'matmul' && k.epilogue ? [[k.epilogue.expr], 'float32']
      : k.kind === 'scan' ? [k.exprs, 'float32']
      : [];
    if (!exprs) return NOTHING_TO_PREPARE;
    const key = JSON.stringify([exprs, dtype]);
    let p = this.compiled.get(key);
    if (!p) this.compiled.set(key, (p = { key, fns: exprs.map((e) => compile(e, dtype)) }));
    return p;
  }

  dispatch(prepared: Prepared, k: Kernel, inputs: Storage[], outputs: Storage[]): void {
    const ins = inputs.map((s) => (s as CpuStorage).data);
    const outs = outputs.map((s) => (s as CpuStorage).data);
    switch (k.kind) {
      case 'map': return map(k, (prepared as CpuPrepared).fns!, ins, outs);
      case 'multimap':
        for (const seg of k.segments) map(segmentMap(k, seg), (prepared as CpuPrepared).fns!, seg.inputs.map((p) => ins[p.storage]), seg.outputs.map((p) => outs[p.storage]));
        return;
      case 'reduce': return reduce(k, k.prologue ? prologueValues(k.prologue, k.dtype, (prepared as CpuPrepared).fns!, ins) : ins[0], outs[0]);
      case 'matmul': {
        const [na, nb] = operandStorages(k);
        // A prologue operand's values first, into a dense buffer the plain GEMM reads.
        const operand = (p: Prologue | undefined, from: number, n: number) =>
          p ? prologueValues(p, 'float32', (this.prepare(prologueMap(p, 'float32')) as CpuPrepared).fns!, ins.slice(from, from + n)) : ins[from];
        const plain = plainOperands(k);
        const b = operand(k.bPrologue, na, nb);
        matmul(plain, operand(k.aPrologue, 0, na), b, ins.slice(na + nb), (prepared as CpuPrepared).fns?.[0] ?? null, outs[0]);
        if (k.colSums) colSums(plain, b, outs[1]);
        return;
      }
      case 'softmax': return softmax(k, ins[0], outs[0] as Float32Array);
      case 'gather': return gather(k, ins[0], ins[1] as Int32Array, outs[0]);
      case 'scatterAdd': return scatterAdd(k, ins[0], ins[1] as Int32Array, outs[0]);
      case 'rand': return rand(k, outs[0]);
      case 'conv': return conv(k, ins, outs[0]);
      case 'pool': return pool(k, ins, outs[0]);
      case 'classes': return classesKernel(k, ins, outs);
      case 'attention': return attention(k, ins, outs);
      case 'scan': {
        const buffers = () => [...ins, ...outs] as Float32Array[];
        return scan(k, (prepared as CpuPrepared).fns!, buffers, loopGemm(buffers));
      }
    }
  }
}

/** A prologue's values, computed as the map kernel would store them. */
function prologueValues(p: Prologue, dtype: DType, fns: Eval[], ins: TypedArray[]): TypedArray {
  const out = dtype === 'int32' ? new Int32Array(sizeOf(p.shape)) : new Float32Array(sizeOf(p.shape));
  map(prologueMap(p, dtype), fns, ins, [out]);
  return out;
}

function map(k: MapKernel, fns: Eval[], ins: TypedArray[], outs: TypedArray[]) {
  const rank = k.shape.length;
  const total = sizeOf(k.shape);
  if (total === 0) return;
  const idx = new Array<number>(rank).fill(0);
  const inOff = k.inputs.map((v) => v.offset);
  const outOff = k.outputs.map((v) => v.offset);
  const vals = new Array<number>(ins.length);
  const results = new Array<number>(outs.length);
  const toInt = k.dtype === 'int32';
  for (let n = 0; n < total; n++) {
    for (let i = 0; i < ins.length; i++) vals[i] = ins[i][inOff[i]];
    // Evaluate every output before storing, so in-place outputs read old values.
    for (let j = 0; j < outs.length; j++) {
      const r = fns[j](vals);
      results[j] = toInt ? Math.trunc(r) : r;
    }
    for (let j = 0; j < outs.length; j++) outs[j][outOff[j]] = results[j];
    // Advance the multi-index, keeping every view's offset in step.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let i = 0; i < ins.length; i++) inOff[i] += k.inputs[i].strides[d];
      for (let j = 0; j < outs.length; j++) outOff[j] += k.outputs[j].strides[d];
      if (idx[d] < k.shape[d]) break;
      for (let i = 0; i < ins.length; i++) inOff[i] -= k.inputs[i].strides[d] * k.shape[d];
      for (let j = 0; j < outs.length; j++) outOff[j] -= k.outputs[j].strides[d] * k.shape[d];
      idx[d] = 0;
    }
  }
}

/** Each output element of a conv kernel summed straight from its definition (see ConvKernel), in float64. */
export function conv(k: ConvKernel, ins: TypedArray[], out: TypedArray) {
  const [N, C, H, W, O, OH, OW, KH, KW] = k.dims;
  const [sh, sw] = k.stride;
  const [dh, dw] = k.dilation;
  const [ph, pw] = k.pad;
  const cg = C / k.groups;
  const og = O / k.groups;
  const at = (v: View, a: number, b: number, c: number, d: number) => v.offset + a * v.strides[0] + b * v.strides[1] + c * v.strides[2] + d * v.strides[3];
  /** The input pixel tap (i, j) of output pixel (p, q) reads along one axis, or -1 in the padding. */
  const src = (p: number, i: number, s: number, d: number, pad: number, size: number) => {
    const v = p * s + i * d - pad;
    return v >= 0 && v < size ? v : -1;
  };
  if (k.mode === 'forward') {
    const [x, w, bias] = ins;
    const act = k.activation ? compile(activationExpr(k.activation)) : null;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
      const c0 = Math.floor(o / og) * cg;
      let acc = 0;
      for (let ci = 0; ci < cg; ci++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
        const iy = src(p, i, sh, dh, ph, H);
        const ix = src(q, j, sw, dw, pw, W);
        if (iy >= 0 && ix >= 0) acc += x[at(k.x, n, c0 + ci, iy, ix)] * w[at(k.w, o, ci, i, j)];
      }
      if (k.bias) acc += bias[o];
      out[at(k.y, n, o, p, q)] = act ? act([acc]) : acc;
    }
  } else if (k.mode === 'gradInput') {
    const [dy, w] = ins;
    /** The output pixel whose tap i reads input pixel v, or -1. */
    const dst = (v: number, i: number, s: number, d: number, pad: number, size: number) => {
      const t = v + pad - i * d;
      return t >= 0 && t % s === 0 && t / s < size ? t / s : -1;
    };
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let v = 0; v < W; v++) {
      const g = Math.floor(c / cg);
      let acc = 0;
      for (let oi = 0; oi < og; oi++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
        const p = dst(h, i, sh, dh, ph, OH);
        const q = dst(v, j, sw, dw, pw, OW);
        if (p >= 0 && q >= 0) acc += dy[at(k.y, n, g * og + oi, p, q)] * w[at(k.w, g * og + oi, c - g * cg, i, j)];
      }
      out[at(k.x, n, c, h, v)] = acc;
    }
  } else {
    const [x, dy] = ins;
    for (let o = 0; o < O; o++) for (let ci = 0; ci < cg; ci++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const c = Math.floor(o / og) * cg + ci;
      let acc = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
        const iy = src(p, i, sh, dh, ph, H);
        const ix = src(q, j, sw, dw, pw, W);
        if (iy >= 0 && ix >= 0) acc += x[at(k.x, n, c, iy, ix)] * dy[at(k.y, n, o, p, q)];
      }
      out[at(k.w, o, ci, i, j)] = acc;
    }
  }
}

/** Each element of a pool kernel from its definition (see PoolKernel), in float64; the wasm backend runs it on its heap too. */
export function pool(k: PoolKernel, ins: TypedArray[], out: TypedArray) {
  const [N, C, H, W, OH, OW, KH, KW] = k.dims;
  const [sh, sw] = k.stride;
  const [dh, dw] = k.dilation;
  const [ph, pw] = k.pad;
  const at = (v: View, a: number, b: number, c: number, d: number) => v.offset + a * v.strides[0] + b * v.strides[1] + c * v.strides[2] + d * v.strides[3];
  const inside = (v: number, lo: number, hi: number) => v >= lo && v < hi;
  /** The tap (i * KW + j) holding window (p, q)'s first largest value (NaN wins), or -1 for a window wholly outside the image. */
  const argmax = (x: TypedArray, n: number, c: number, p: number, q: number) => {
    let best = -Infinity;
    let found = -1;
    for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const y = p * sh + i * dh - ph;
      const z = q * sw + j * dw - pw;
      if (!inside(y, 0, H) || !inside(z, 0, W)) continue;
      const v = x[at(k.x, n, c, y, z)];
      if (found < 0 || v > best || Number.isNaN(v)) [best, found] = [v, i * KW + j];
    }
    return found;
  };
  /** Window (p, q)'s divisor: its taps inside the padded image (countIncludePad) or inside the image. */
  const divisor = (p: number, q: number) => {
    const [loH, hiH, loW, hiW] = k.countIncludePad ? [-ph, k.end[0], -pw, k.end[1]] : [0, H, 0, W];
    let count = 0;
    for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) count += +(inside(p * sh + i * dh - ph, loH, hiH) && inside(q * sw + j * dw - pw, loW, hiW));
    return count;
  };
  if (k.mode === 'max' || k.mode === 'avg') {
    const [x] = ins;
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
      let v: number;
      if (k.mode === 'max') {
        const t = argmax(x, n, c, p, q);
        v = t < 0 ? -Infinity : x[at(k.x, n, c, p * sh + Math.floor(t / KW) * dh - ph, q * sw + (t % KW) * dw - pw)];
      } else {
        let sum = 0;
        for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
          const y = p * sh + i * dh - ph;
          const z = q * sw + j * dw - pw;
          if (inside(y, 0, H) && inside(z, 0, W)) sum += x[at(k.x, n, c, y, z)];
        }
        v = sum / divisor(p, q);
      }
      out[at(k.y, n, c, p, q)] = v;
    }
    return;
  }
  const [x, dy] = k.mode === 'maxGrad' ? ins : [null, ins[0]];
  /** The window index along one axis whose tap t covers pixel v, or -1. */
  const window = (v: number, t: number, s: number, d: number, pad: number, size: number) => {
    const o = v + pad - t * d;
    return o >= 0 && o % s === 0 && o / s < size ? o / s : -1;
  };
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
    let acc = 0;
    for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const p = window(h, i, sh, dh, ph, OH);
      const q = window(w, j, sw, dw, pw, OW);
      if (p < 0 || q < 0) continue;
      const g = dy[at(k.y, n, c, p, q)];
      if (x) acc += argmax(x, n, c, p, q) === i * KW + j ? g : 0;
      else acc += g / divisor(p, q);
    }
    out[at(k.dx, n, c, h, w)] = acc;
  }
}

function reduce(k: ReduceKernel, x: TypedArray, out: TypedArray) {
  const { outer, n, inner, op } = k;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let acc = op === 'sum' ? 0 : op === 'max' || op === 'argmax' ? -Infinity : Infinity;
      let best = 0;
      for (let j = 0; j < n; j++) {
        const v = x[base + j * inner];
        if (op === 'sum') acc += v;
        else if (Number.isNaN(v)) {
          // NaN propagates through max/min and wins argmax, as in PyTorch.
          if (!Number.isNaN(acc)) { acc = v; best = j; }
        } else if ((op === 'max' || op === 'argmax') ? v > acc : v < acc) { acc = v; best = j; }
      }
      out[o * inner + i] = op === 'argmax' || op === 'argmin' ? best : op === 'sum' ? acc * k.scale : acc;
    }
  }
}

function matmul(k: MatmulKernel, a: TypedArray, b: TypedArray, extra: TypedArray[], fn: Eval | null, c: TypedArray) {
  const { m, n, k: kk } = k;
  const row = new Float64Array(n);
  const epi = k.epilogue;
  const v = new Array<number>(extra.length + 1).fill(0);
  for (let bt = 0; bt < k.batch; bt++) {
    const aBase = k.a.offset + bt * k.a.batchStride;
    const bBase = k.b.offset + bt * k.b.batchStride;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < kk; p++) {
        const av = a[aBase + i * k.a.rowStride + p * k.a.colStride];
        if (av === 0) continue;
        const bRow = bBase + p * k.b.rowStride;
        for (let j = 0; j < n; j++) row[j] += av * b[bRow + j * k.b.colStride];
      }
      // The epilogue in float32 like the GPU's, from the rounded sum.
      if (fn) {
        for (let j = 0; j < n; j++) {
          v[0] = Math.fround(row[j]);
          for (let e = 0; e < extra.length; e++) {
            const view = epi!.inputs[e];
            v[e + 1] = extra[e][view.offset + bt * view.strides[0] + i * view.strides[1] + j * view.strides[2]];
          }
          row[j] = fn(v);
        }
      }
      c.set(row, (bt * m + i) * n);
    }
  }
}

/** Sums over K of each column of B (batch 1), in the order and precision of the sum reduction; the wasm backend runs it on its heap too. */
export function colSums(k: MatmulKernel, b: TypedArray, out: TypedArray) {
  for (let j = 0; j < k.n; j++) {
    let acc = 0;
    for (let p = 0; p < k.k; p++) acc += b[k.b.offset + p * k.b.rowStride + j * k.b.colStride];
    out[j] = acc;
  }
}

function softmax(k: SoftmaxKernel, x: TypedArray, out: Float32Array) {
  const { outer, n, inner } = k;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let max = -Infinity;
      for (let j = 0; j < n; j++) max = Math.max(max, x[base + j * inner]);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(x[base + j * inner] - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < n; j++) {
        const z = x[base + j * inner] - max;
        out[base + j * inner] = k.log ? z - logSum : Math.exp(z) / sum;
      }
    }
  }
}

/** Visits every index position p of `indexShape`, giving its flat index and the target flat offset into inputShape. */
function forEachGather(k: GatherKernel, index: Int32Array, visit: (p: number, target: number) => void) {
  const rank = k.indexShape.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) { inStrides[d] = s; s *= k.inputShape[d]; }
  const total = sizeOf(k.indexShape);
  const coord = new Array<number>(rank).fill(0);
  const dimSize = k.inputShape[k.dim];
  for (let p = 0; p < total; p++) {
    let target = 0;
    for (let d = 0; d < rank; d++) {
      let c = coord[d];
      if (d === k.dim) {
        c = index[p];
        if (c < 0 || c >= dimSize) throw indexError(k, c, dimSize);
      }
      target += c * inStrides[d];
    }
    visit(p, target);
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d] < k.indexShape[d]) break;
      coord[d] = 0;
    }
  }
}

export function gather(k: GatherKernel, x: TypedArray, index: Int32Array, out: TypedArray) {
  forEachGather(k, index, (p, t) => { out[p] = x[t]; });
}

export function scatterAdd(k: GatherKernel, grad: TypedArray, index: Int32Array, out: TypedArray) {
  out.fill(0);
  forEachGather(k, index, (p, t) => { out[t] += grad[p]; });
}

export function rand(k: RandKernel, out: TypedArray) {
  for (let i = 0; i < k.size; i++) {
    if (k.dist === 'normal') {
      const u1 = uniformAt(k.seed, k.counter, 2 * i);
      const u2 = uniformAt(k.seed, k.counter, 2 * i + 1);
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    } else {
      const u = uniformAt(k.seed, k.counter, i);
      out[i] = k.dist === 'uniform' ? u : u < k.p ? 1 : 0;
    }
  }
}

/**
 * An attention kernel (see AttentionKernel) straight from its definition, in float64: each
 * row's scores in full, then the mode's sums. The wasm backend runs this too, on its heap.
 */
export function attention(k: AttentionKernel, ins: TypedArray[], outs: TypedArray[]) {
  const [N, H, L, S, D, DV] = k.dims;
  const m = +k.mask;
  const [qv, kv, vv] = k.views;
  const maskView = k.mask ? k.views[3] : null;
  const [q, key, v] = ins;
  const mask = k.mask ? ins[3] : null;
  const at = (w: View, n: number, h: number, i: number, d: number) => w.offset + n * w.strides[0] + h * w.strides[1] + i * w.strides[2] + d * w.strides[3];
  const dot = (a: TypedArray, av: View, b: TypedArray, bv: View, n: number, h: number, i: number, j: number, len: number) => {
    let acc = 0;
    for (let d = 0; d < len; d++) acc += a[at(av, n, h, i, d)] * b[at(bv, n, h, j, d)];
    return acc;
  };
  /** Row i's scores over every key. */
  const scores = (n: number, h: number, i: number) => {
    const s = new Float64Array(S);
    for (let j = 0; j < S; j++) {
      s[j] = k.causal && j > i ? -Infinity : dot(q, qv, key, kv, n, h, i, j, D) * k.scale + (mask ? mask[at(maskView!, n, h, i, j)] : 0);
    }
    return s;
  };
  const logSumExp = (s: Float64Array) => {
    const max = s.reduce((a, b) => Math.max(a, b), -Infinity);
    let sum = 0;
    for (const x of s) sum += x === -Infinity ? 0 : Math.exp(x - max);
    return max + Math.log(sum);
  };
  /** A masked pair's probability is 0, also in a row with every key masked (where the forward gives NaN, as PyTorch's softmax). */
  const prob = (s: number, lse: number) => (s === -Infinity ? 0 : Math.exp(s - lse));
  for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) {
    if (k.mode === 'forward') {
      const ov = k.views[3 + m];
      for (let i = 0; i < L; i++) {
        const s = scores(n, h, i);
        const lse = logSumExp(s);
        for (let e = 0; e < DV; e++) {
          let acc = 0;
          for (let j = 0; j < S; j++) acc += prob(s[j], lse) * v[at(vv, n, h, j, e)];
          outs[0][at(ov, n, h, i, e)] = lse === -Infinity ? NaN : acc;
        }
      }
    } else if (k.mode === 'gradQ') {
      const [o, g] = [ins[3 + m], ins[4 + m]];
      const [ov, gv, dqv] = k.views.slice(3 + m);
      for (let i = 0; i < L; i++) {
        const s = scores(n, h, i);
        const lse = logSumExp(s);
        const delta = dot(g, gv, o, ov, n, h, i, i, DV);
        const row = (n * H + h) * L + i;
        outs[1][2 * row] = lse;
        outs[1][2 * row + 1] = delta;
        const dq = new Float64Array(D);
        for (let j = 0; j < S; j++) {
          const p = prob(s[j], lse);
          if (!p) continue;
          const ds = p * (dot(g, gv, v, vv, n, h, i, j, DV) - delta);
          for (let d = 0; d < D; d++) dq[d] += ds * key[at(kv, n, h, j, d)];
        }
        for (let d = 0; d < D; d++) outs[0][at(dqv, n, h, i, d)] = dq[d] * k.scale;
      }
    } else {
      const [g, stats] = [ins[3 + m], ins[4 + m]];
      const [gv, dkv, dvv] = k.views.slice(3 + m);
      const rows = Array.from({ length: L }, (_, i) => scores(n, h, i));
      for (let j = 0; j < S; j++) {
        const dk = new Float64Array(D);
        const dv = new Float64Array(DV);
        for (let i = 0; i < L; i++) {
          const row = (n * H + h) * L + i;
          const p = prob(rows[i][j], stats[2 * row]);
          if (!p) continue;
          for (let e = 0; e < DV; e++) dv[e] += p * g[at(gv, n, h, i, e)];
          const ds = p * (dot(g, gv, v, vv, n, h, i, j, DV) - stats[2 * row + 1]);
          for (let d = 0; d < D; d++) dk[d] += ds * q[at(qv, n, h, i, d)];
        }
        for (let d = 0; d < D; d++) outs[0][at(dkv, n, h, j, d)] = dk[d] * k.scale;
        for (let e = 0; e < DV; e++) outs[1][at(dvv, n, h, j, e)] = dv[e];
      }
    }
  }
}
