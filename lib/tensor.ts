// The Tensor handle: an id, a shape and a dtype. Ops infer their output
// shape here, synchronously (so a shape error throws at the user's line),
// and append a record to the op stream; they never compute.

import { SPECS, type OpName } from './ops/index.js';
import type { BinaryName } from './ops/elementwise.js';
import type { Meta, OpSpec } from './ops/spec.js';
import type { Command } from './protocol.js';
import { broadcastShapes, fmt, normDim, ShapeError, sizeOf, stridesOf, type DType } from './shape.js';
import { runtime } from './context.js';
import * as check from './validate.js';
import { callerStack } from './runtime.js';

export type TensorLike = Tensor | number;
export type NestedArray = number | NestedArray[];

/**
 * t.data: called, it reads the values (`await t.data()`); used as a tensor, it
 * is PyTorch's `t.data`, a detached alias sharing t's storage, so
 * `p.data.add_(u)` updates p.
 */
export type DataAccessor = (() => Promise<Float32Array | Int32Array>) & Tensor;

/** Global autograd switch, flipped by noGrad. */
export const gradMode = { enabled: true };

/** Tensors created inside tidy() scopes, innermost last. */
const tidyScopes: Tensor[][] = [];

export class Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  private _grad: Tensor | null = null;
  /** Name of the op that made this tensor when it is part of an autograd graph; null for leaves. */
  readonly gradFn: string | null;
  private _requiresGrad: boolean;
  /** Inputs of the op that made this tensor, kept until backward frees the graph. */
  private _inputs: Tensor[] | null;
  private disposed = false;
  private readonly rt = runtime();

  /** @internal Use sn.tensor() and friends. */
  constructor(id: number, shape: readonly number[], dtype: DType, requiresGrad: boolean, gradFn: string | null = null, inputs: Tensor[] | null = null) {
    this.id = id;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this._requiresGrad = requiresGrad;
    this.gradFn = gradFn;
    this._inputs = inputs;
    this.rt.track(this, id);
    tidyScopes[tidyScopes.length - 1]?.push(this);
  }

  /** Gradient accumulated by backward(); a handle at once, its values arrive with the stream. */
  get grad(): Tensor | null { return this._grad; }
  /** `p.grad = null` makes the next backward start a fresh gradient; `p.grad = t` makes it add into t, as in PyTorch. */
  set grad(g: Tensor | null) {
    if (g && (fmt(g.shape) !== fmt(this.shape) || g.dtype !== this.dtype)) {
      throw new ShapeError(`assigned grad has shape ${fmt(g.shape)} (${g.dtype}) but the tensor has shape ${fmt(this.shape)} (${this.dtype})`);
    }
    this._grad = g;
  }

  get requiresGrad() { return this._requiresGrad; }
  set requiresGrad(flag: boolean) {
    if (flag === this._requiresGrad) return;
    if (this.gradFn) throw new Error('requiresGrad can only be changed on leaf tensors');
    if (flag && this.dtype !== 'float32') throw new Error('only float32 tensors can require gradients');
    this._requiresGrad = flag;
    this.rt.enqueue(['requiresGrad', this.id, flag]);
  }

  /** PyTorch's requires_grad_(): sets the flag, returns this. */
  requiresGrad_(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  get isLeaf() { return this.gradFn === null; }
  get size() { return sizeOf(this.shape); }
  get ndim() { return this.shape.length; }

  toString() {
    return `Tensor(shape=${fmt(this.shape)}, dtype=${this.dtype}${this._requiresGrad ? ', requiresGrad=true' : ''})`;
  }

  // ---- reading -------------------------------------------------------

  /** See DataAccessor. The alias is made only when used as a tensor, so reads cost nothing extra. */
  get data(): DataAccessor {
    const read = async () => {
      this.check();
      return (await this.rt.read(this.id)).data;
    };
    let alias: Tensor | null = null;
    const target = () => (alias ??= this.detach());
    return new Proxy(read, {
      get: (fn, key) => {
        if (key === 'call' || key === 'apply' || key === 'bind') return Reflect.get(fn, key);
        const v = Reflect.get(target(), key, target());
        return typeof v === 'function' ? v.bind(target()) : v;
      },
      set: (_fn, key, v) => Reflect.set(target(), key, v),
      has: (_fn, key) => key in target(),
      getPrototypeOf: () => Tensor.prototype,
    }) as DataAccessor;
  }

  async array(): Promise<NestedArray> {
    const data = await this.data();
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === this.shape.length) return data[offset];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): the tensor has ${this.size} elements (shape ${fmt(this.shape)}); only one-element tensors convert to a number`);
    return (await this.data())[0];
  }

  // ---- lifetime ------------------------------------------------------

  /** Frees the worker's copy now instead of at garbage collection. */
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.untrack(this);
    this.rt.enqueue(['free', [this.id]]);
  }

  get isDisposed() { return this.disposed; }

  /** @internal */
  check() {
    if (this.disposed) throw new Error(`${this} was disposed`);
    if (this.rt !== runtime()) throw new Error(`${this} belongs to an engine that sn.init() replaced`);
  }

  // ---- autograd ------------------------------------------------------

  /** Accumulates d(this)/d(leaf) into every reachable leaf's .grad. Frees the graph, as PyTorch does. */
  backward(gradient?: Tensor) {
    this.check();
    if (!this._requiresGrad) throw new Error('backward(): the tensor does not require grad and has no grad_fn');
    if (!gradient && this.size !== 1) throw new Error(`backward(): grad can be implicitly created only for scalar outputs, got shape ${fmt(this.shape)}`);
    if (gradient && fmt(gradient.shape) !== fmt(this.shape)) throw new ShapeError(`backward(): gradient shape ${fmt(gradient.shape)} does not match output shape ${fmt(this.shape)}`);
    const leaves: [number, number][] = [];
    const graph: Tensor[] = [];
    const seen = new Set<Tensor>([this]);
    const stack: Tensor[] = [this];
    while (stack.length) {
      const t = stack.pop()!;
      if (t.isLeaf) {
        if (!t.grad) t.grad = new Tensor(this.rt.newId(), t.shape, 'float32', false);
        leaves.push([t.id, t.grad.id]);
        continue;
      }
      if (!t._inputs) throw new Error('backward(): trying to backward through the graph a second time (its saved tensors were freed by the first backward)');
      graph.push(t);
      for (const i of t._inputs) {
        if (i._requiresGrad && !seen.has(i)) {
          seen.add(i);
          stack.push(i);
        }
      }
    }
    this.rt.enqueue(['backward', this.id, gradient?.id ?? 0, leaves]);
    for (const t of graph) t._inputs = null;
  }

  /** A new leaf sharing this tensor's data, cut off from the graph. */
  detach(): Tensor {
    this.check();
    const out = new Tensor(this.rt.newId(), this.shape, this.dtype, false);
    this.rt.enqueue(['detach', out.id, this.id]);
    return out;
  }

  // ---- ops -------------------------------------------------------------

  add(o: TensorLike) { return binary('add', this, o); }
  sub(o: TensorLike) { return binary('sub', this, o); }
  mul(o: TensorLike) { return binary('mul', this, o); }
  div(o: TensorLike) { return binary('div', this, o); }
  pow(o: TensorLike) { return binary('pow', this, o); }
  maximum(o: TensorLike) { return binary('maximum', this, o); }
  minimum(o: TensorLike) { return binary('minimum', this, o); }
  eq(o: TensorLike) { return binary('eq', this, o); }
  ne(o: TensorLike) { return binary('ne', this, o); }
  gt(o: TensorLike) { return binary('gt', this, o); }
  ge(o: TensorLike) { return binary('ge', this, o); }
  lt(o: TensorLike) { return binary('lt', this, o); }
  le(o: TensorLike) { return binary('le', this, o); }
  /** Scalar-first subtraction and division: rsub(2) is 2 - this. */
  rsub(s: number) { return record('sub', [this], { scalar: s, reversed: true }); }
  rdiv(s: number) { return record('div', [this], { scalar: s, reversed: true }); }

  neg() { return record('neg', [this]); }
  abs() { return record('abs', [this]); }
  exp() { return record('exp', [this]); }
  log() { return record('log', [this]); }
  sqrt() { return record('sqrt', [this]); }
  sin() { return record('sin', [this]); }
  cos() { return record('cos', [this]); }
  square() { return record('square', [this]); }
  relu() { return record('relu', [this]); }
  sigmoid() { return record('sigmoid', [this]); }
  tanh() { return record('tanh', [this]); }
  gelu() { return record('gelu', [this]); }
  softplus() { return record('softplus', [this]); }
  elu() { return record('elu', [this]); }
  leakyRelu(slope = 0.01) { return record('leakyRelu', [this], { slope }); }
  clamp(min?: number, max?: number) { return record('clamp', [this], { min, max }); }
  float() { return this.dtype === 'float32' ? this : record('cast', [this], { dtype: 'float32' }); }
  int() { return this.dtype === 'int32' ? this : record('cast', [this], { dtype: 'int32' }); }

  matmul(o: Tensor) { return record('matmul', [this, o]); }
  softmax(dim: number) { return record('softmax', [this], { dim }); }
  logSoftmax(dim: number) { return record('logSoftmax', [this], { dim }); }

  sum(dim?: number | number[], keepdim = false) { return record('sum', [this], { dims: dimList(dim), keepdim }); }
  mean(dim?: number | number[], keepdim = false) { return record('mean', [this], { dims: dimList(dim), keepdim }); }
  /** Values only (PyTorch's amax). */
  max(dim?: number | number[], keepdim = false) { return record('max', [this], { dims: dimList(dim), keepdim }); }
  min(dim?: number | number[], keepdim = false) { return record('min', [this], { dims: dimList(dim), keepdim }); }
  argmax(dim?: number, keepdim = false) { return record('argmax', [this], { dim, keepdim }); }
  argmin(dim?: number, keepdim = false) { return record('argmin', [this], { dim, keepdim }); }

  reshape(...shape: (number | number[])[]) { return record('reshape', [this], { shape: shapeArgs(shape) }); }
  view(...shape: (number | number[])[]) { return this.reshape(...shape); }
  permute(...dims: (number | number[])[]) { return record('permute', [this], { dims: shapeArgs(dims) }); }
  transpose(d0: number, d1: number) {
    const r = this.shape.length;
    const dims = this.shape.map((_, i) => i);
    const a = normDim(d0, r, 'transpose', this.shape);
    const b = normDim(d1, r, 'transpose', this.shape);
    [dims[a], dims[b]] = [dims[b], dims[a]];
    return record('permute', [this], { dims });
  }
  /** Transpose of a matrix (last two dims). */
  get T() { return this.transpose(-2, -1); }
  expand(...shape: (number | number[])[]) { return record('expand', [this], { shape: shapeArgs(shape) }); }
  flatten(start = 0, end = -1) {
    if (this.shape.length === 0) return this.reshape([1]);
    const s = normDim(start, this.shape.length, 'flatten', this.shape);
    const e = normDim(end, this.shape.length, 'flatten', this.shape);
    if (s > e) throw new ShapeError(`flatten: start dim ${start} comes after end dim ${end} for ${fmt(this.shape)}`);
    return this.reshape([...this.shape.slice(0, s), sizeOf(this.shape.slice(s, e + 1)), ...this.shape.slice(e + 1)]);
  }
  unsqueeze(dim: number) {
    const d = normDim(dim, this.shape.length + 1, 'unsqueeze', this.shape);
    const shape = [...this.shape];
    shape.splice(d, 0, 1);
    return this.reshape(shape);
  }
  squeeze(dim?: number) {
    if (dim === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const d = normDim(dim, this.shape.length, 'squeeze', this.shape);
    return this.shape[d] === 1 ? this.reshape(this.shape.filter((_, i) => i !== d)) : this;
  }
  /**
   * Like x[i] in PyTorch: a number selects along dim (default 0), negative
   * counting from the end; an int32 tensor picks rows (x[idx]); an array of
   * int32 tensors or numbers is advanced indexing, x[rows, cols]:
   * out[torch.arange(B), lengths - 1] is out.index([sn.arange(B), lengths.sub(1)]).
   */
  index(i: number | Tensor | (Tensor | number)[], dim = 0): Tensor {
    if (typeof i === 'number') return record('select', [this], { dim, index: i });
    if (dim !== 0) throw new TypeError('index: tensor indices select along dim 0; use indexSelect(dim, idx) for another dim');
    return this.advancedIndex(Array.isArray(i) ? i : [i]);
  }
  slice(dim: number, start?: number, end?: number, step?: number) { return record('slice', [this], { dim, start, end, step }); }
  gather(dim: number, index: Tensor) { return record('gather', [this, index], { dim }); }
  indexSelect(dim: number, index: Tensor) { return record('indexSelect', [this, index], { dim }); }
  clone() { return record('clone', [this]); }
  where(cond: Tensor, other: TensorLike) { return where(cond, this, other); }

  /**
   * Advanced indexing, PyTorch's t[rows, cols]: one int32 index tensor (or
   * number) per leading dim, broadcast together; the result is
   * [...broadcast index shape, ...remaining dims]. Negative indices count from
   * the end. One gather, with a backward.
   */
  private advancedIndex(indices: (Tensor | number)[]): Tensor {
    if (!indices.length || indices.length > this.ndim) throw new ShapeError(`index: got ${indices.length} indices for a tensor of shape ${fmt(this.shape)}`);
    const lead = this.shape.slice(0, indices.length);
    const strides = stridesOf(lead);
    let flat: Tensor | null = null;
    indices.forEach((ix, d) => {
      const t = typeof ix === 'number' ? full([], ix, { dtype: 'int32' }) : ix;
      if (!(t instanceof Tensor) || t.dtype !== 'int32') throw new TypeError(`index: indices must be int32 tensors or integers, got ${t instanceof Tensor ? t.dtype : typeof t} at position ${d}`);
      // Negative indices wrap, as in PyTorch.
      const wrapped = where(t.lt(0), t.add(lead[d]), t).int();
      const term = strides[d] === 1 ? wrapped : wrapped.mul(strides[d]);
      flat = flat ? flat.add(term) : term;
    });
    const idx = flat as unknown as Tensor;
    const rows = this.reshape([sizeOf(lead), ...this.shape.slice(indices.length)]);
    return rows.indexSelect(0, idx.flatten()).reshape([...idx.shape, ...this.shape.slice(indices.length)]);
  }

  /** Top k values along dim (default last) and their int32 indices; sorted, largest first unless largest is false. Backward flows to the chosen values. */
  topk(k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
    const d = normDim(dim, this.ndim, 'topk', this.shape);
    if (!Number.isInteger(k) || k < 0 || k > this.shape[d]) throw new RangeError(`topk: k must be an integer in [0, ${this.shape[d]}] for dim ${dim} of ${fmt(this.shape)}, got ${k}`);
    // k rounds of argmax: each masks the winner out with -Infinity. Fine for the small k topk is used with.
    let rest: Tensor = largest ? this : this.neg();
    const values: Tensor[] = [];
    const indices: Tensor[] = [];
    const positions = arange(this.shape[d]).reshape(this.shape.map((n, i) => (i === d ? n : 1)));
    for (let i = 0; i < k; i++) {
      const idx = rest.argmax(d, true);
      const v = rest.gather(d, idx);
      values.push(largest ? v : v.neg());
      indices.push(idx);
      if (i + 1 < k) rest = where(positions.eq(idx), -Infinity, rest);
    }
    const shape = this.shape.map((n, i) => (i === d ? k : n));
    if (!k) return { values: zeros(shape), indices: zeros(shape, { dtype: 'int32' }) };
    return { values: cat(values, d), indices: cat(indices, d) };
  }

  // ---- in place (PyTorch's trailing underscore) ----------------------------

  add_(o: TensorLike) { return this.inPlace('add_', () => this.add(o)); }
  sub_(o: TensorLike) { return this.inPlace('sub_', () => this.sub(o)); }
  mul_(o: TensorLike) { return this.inPlace('mul_', () => this.mul(o)); }
  div_(o: TensorLike) { return this.inPlace('div_', () => this.div(o)); }
  clamp_(min?: number, max?: number) { return this.inPlace('clamp_', () => this.clamp(min, max)); }
  /** Copies src (broadcast to this shape, cast to this dtype) into this tensor. */
  copy_(src: Tensor) { return this.inPlace('copy_', () => src, true); }
  fill_(value: number) { return this.inPlace('fill_', () => full([], value, { dtype: this.dtype }), true); }
  zero_() { return this.fill_(0); }
  /** Sets the elements where mask is non-zero to value. */
  maskedFill_(mask: Tensor, value: number) { return this.inPlace('maskedFill_', () => where(mask.ne(0), value, this), true); }

  /**
   * PyTorch's t[i, j, ...] = value (index_put_ with integer indices): writes
   * value, broadcast, into the element or sub-tensor the integers select:
   * t[i][0][j] = 1 is t.indexPut_([i, 0, j], 1). With int32 index tensors it
   * writes the elements they name together: t[rows, cols] = v is
   * t.indexPut_([rows, cols], v) (duplicate indices average).
   */
  indexPut_(indices: (number | Tensor)[], value: TensorLike) {
    this.checkInPlace('indexPut_');
    if (!Array.isArray(indices) || indices.length > this.ndim) throw new ShapeError(`indexPut_: expected at most ${this.ndim} indices for ${fmt(this.shape)}, got ${JSON.stringify(indices)}`);
    const v = typeof value === 'number' ? full([], value, { dtype: this.dtype }) : value;
    if (indices.every((i) => typeof i === 'number')) {
      // A view of the selected part; writing it writes this tensor's storage.
      const part = noGrad(() => (indices as number[]).reduce<Tensor>((t, i) => t.index(i), this));
      part.writeFrom('indexPut_', v, true);
      return this;
    }
    const lead = this.shape.slice(0, indices.length);
    const count = sizeOf(lead);
    const rows = noGrad(() => {
      const flatIdx = arange(count).reshape(lead).advancedIndex(indices).flatten();
      const n = flatIdx.shape[0];
      const base = this.reshape([count, ...this.shape.slice(indices.length)]);
      const src = v.float().expand(broadcastShapes(v.shape, [n, ...base.shape.slice(1)], 'indexPut_')).reshape([n, -1]);
      // Scatter by a one-hot matmul (composed from existing kernels): row r of
      // `written` sums the values aimed at r, `hits` counts them; rows no index
      // names keep their values. Duplicate indices average (PyTorch leaves them undefined).
      const oneHot = arange(count).eq(flatIdx.unsqueeze(1)); // [n, count]
      const hits = oneHot.sum(0).reshape([count, 1]);
      const written = oneHot.T.matmul(src).div(hits.clamp(1));
      return where(hits.eq(0), base.reshape([count, -1]), written);
    });
    this.writeFrom('indexPut_', rows.reshape([...this.shape]), true);
    return this;
  }

  /** PyTorch's in-place rules: allowed unless this requires grad; a leaf that does is allowed inside noGrad. */
  private checkInPlace(op: string) {
    this.check();
    if (!this._requiresGrad) return;
    if (!this.isLeaf) throw new Error(`${op}: in-place operations on a tensor inside an autograd graph are not supported; use the out-of-place form`);
    if (gradMode.enabled) throw new Error(`${op}: a leaf Variable that requires grad is being used in an in-place operation (wrap it in sn.noGrad(() => ...), as PyTorch's with torch.no_grad():)`);
  }

  private inPlace(op: string, compute: () => Tensor, castAllowed = false): this {
    this.checkInPlace(op);
    this.writeFrom(op, noGrad(compute), castAllowed);
    return this;
  }

  /** Writes src, broadcast to this shape, into this tensor's storage (the 'assign' command). */
  private writeFrom(op: string, src: Tensor, castAllowed: boolean) {
    src.check();
    const shape = broadcastShapes(this.shape, src.shape, op);
    if (fmt(shape) !== fmt(this.shape)) throw new ShapeError(`${op}: output with shape ${fmt(this.shape)} doesn't match the broadcast shape ${fmt(shape)}`);
    if (!castAllowed && src.dtype !== this.dtype) throw new TypeError(`${op}: result type ${src.dtype} can't be cast to the desired output type ${this.dtype}`);
    this.rt.enqueue(['assign', this.id, src.id]);
  }
}

const dimList = (dim?: number | number[]) => (dim === undefined ? undefined : Array.isArray(dim) ? dim : [dim]);
const shapeArgs = (args: (number | number[])[]) => (args.length === 1 && Array.isArray(args[0]) ? [...args[0]] : (args as number[]));

const metaOf = (t: Tensor): Meta => ({ shape: [...t.shape], dtype: t.dtype });

/** Records one op: infers its output here (throwing at the caller's line) and queues it for the worker. */
export function record(name: OpName, inputs: Tensor[], attrs: Record<string, unknown> = {}): Tensor {
  const spec: OpSpec = SPECS[name];
  for (const t of inputs) {
    if (!(t instanceof Tensor)) throw new TypeError(`${name}: expected Tensor arguments, got ${check.describe(t)}`);
    t.check();
  }
  const out = spec.shape(inputs.map(metaOf), attrs);
  check.fitsBuffer(out.shape, runtime().maxBufferBytes, name);
  const requiresGrad = gradMode.enabled && spec.differentiable && out.dtype === 'float32' && inputs.some((t) => t.requiresGrad);
  const rt = runtime();
  const t = new Tensor(rt.newId(), out.shape, out.dtype, requiresGrad, requiresGrad ? name : null, requiresGrad ? inputs : null);
  rt.enqueue(['op', name, t.id, inputs.map((i) => i.id), attrs, requiresGrad] as Command);
  if (rt.anomaly) rt.noteOrigin(t.id, callerStack());
  return t;
}

function binary(name: BinaryName, a: Tensor, b: TensorLike): Tensor {
  if (typeof b === 'number') return record(name, [a], { scalar: b });
  if (!(b instanceof Tensor)) throw new TypeError(`${name}: expected a Tensor or a number, got ${typeof b}`);
  return record(name, [a, b]);
}

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const asT = (v: TensorLike) => (typeof v === 'number' ? full([], v) : v);
  return record('where', [cond, asT(a), asT(b)]);
}

// ---- creation ------------------------------------------------------------

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/** sn.tensor(data, shape?, { dtype, requiresGrad }): data nested arrays, a typed array or a number. */
export function tensor(data: NestedArray | ArrayLike<number>, shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  check.options(opts, 'tensor: options');
  const dtype = opts.dtype === undefined ? (data instanceof Int32Array ? 'int32' : 'float32') : check.dtype(opts.dtype, 'tensor: dtype');
  let flat: ArrayLike<number>;
  let inferred: number[];
  /** Whether `flat` is ours already (no copy needed). */
  let owned = false;
  if (typeof data === 'number' || typeof data === 'boolean') {
    flat = [+data];
    inferred = [];
  } else if (Array.isArray(data)) {
    // Flattened straight into the array that travels to the worker (float64 first for int32, to check the values).
    ({ shape: inferred, flat } = check.nested(data, 'tensor', dtype === 'int32' ? Float64Array : Float32Array));
    owned = dtype === 'float32';
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array)) {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  } else {
    throw new TypeError(`tensor: data must be a number, a nested array of numbers or a typed array, got ${check.describe(data)}`);
  }
  const finalShape = shape === undefined ? inferred : check.shape(shape, 'tensor: shape');
  if (sizeOf(finalShape) !== flat.length) throw new ShapeError(`tensor: ${flat.length} values do not fill shape ${fmt(finalShape)}`);
  if (dtype === 'int32' && !(flat instanceof Int32Array)) check.int32Values(flat, 'tensor');
  // A copy (the caller keeps its array); typed arrays copy as one block, not element by element.
  const Ctor = dtype === 'int32' ? Int32Array : Float32Array;
  const values = owned ? (flat as Float32Array) : ArrayBuffer.isView(flat) ? new Ctor(flat as unknown as ArrayLike<number>) : Ctor.from(flat);
  return fromTyped(values, finalShape, dtype, !!opts.requiresGrad);
}

/** @internal Wraps a fresh array that the op stream then owns: it is transferred to the worker, not copied. */
export function fromTyped(values: Float32Array | Int32Array, shape: readonly number[], dtype: DType, requiresGrad = false): Tensor {
  if (requiresGrad && dtype !== 'float32') throw new Error('only float32 tensors can require gradients');
  const rt = runtime();
  check.fitsBuffer(shape, rt.maxBufferBytes, 'tensor');
  const t = new Tensor(rt.newId(), shape, dtype, requiresGrad);
  rt.enqueue(['data', t.id, values, [...shape], dtype, requiresGrad]);
  return t;
}

const leaf = (name: 'full' | 'arange' | 'random', attrs: Record<string, unknown>, opts: TensorOptions) => {
  check.options(opts, `${name}: options`);
  if (attrs.shape !== undefined) attrs.shape = check.shape(attrs.shape, `${name}: shape`);
  if (attrs.dtype !== undefined) check.dtype(attrs.dtype, `${name}: dtype`);
  const t = record(name, [], attrs);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
};

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}) {
  const v = check.number(typeof value === 'boolean' ? +value : value, 'full: fill value', { finite: false });
  const dtype = opts?.dtype ?? 'float32';
  if (dtype === 'int32') check.int32Values([v], 'full');
  return leaf('full', { shape, value: v, dtype }, opts);
}
export const zeros = (shape: readonly number[], opts: TensorOptions = {}) => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: TensorOptions = {}) => full(shape, 1, opts);
export const zerosLike = (t: Tensor) => full(t.shape, 0, { dtype: t.dtype });
export const onesLike = (t: Tensor) => full(t.shape, 1, { dtype: t.dtype });
export const randn = (shape: readonly number[], opts: TensorOptions = {}) => leaf('random', { shape, dist: 'normal' }, opts);
export const rand = (shape: readonly number[], opts: TensorOptions = {}) => leaf('random', { shape, dist: 'uniform' }, opts);
/** arange(end) or arange(start, end, step?); int32 when all arguments are integers, as in PyTorch. */
export function arange(a: number, b?: number, step = 1, opts: TensorOptions = {}) {
  const [start, end] = b === undefined ? [0, a] : [a, b];
  check.number(start, 'arange: start');
  check.number(end, 'arange: end');
  check.number(step, 'arange: step');
  if (step === 0) throw new RangeError('arange: step must be nonzero');
  const dtype = opts.dtype ?? ([start, end, step].every(Number.isInteger) ? 'int32' : 'float32');
  return leaf('arange', { start, end, step, dtype }, opts);
}

export function cat(ts: Tensor[], dim = 0) {
  if (!Array.isArray(ts)) throw new TypeError(`cat: expected a list of Tensors, got ${check.describe(ts)}`);
  return record('cat', ts, { dim });
}
export function stack(ts: Tensor[], dim = 0) {
  if (!Array.isArray(ts)) throw new TypeError(`stack: expected a list of Tensors, got ${check.describe(ts)}`);
  if (ts.some((t) => !(t instanceof Tensor))) throw new TypeError(`stack: expected a list of Tensors, got ${check.describe(ts.find((t) => !(t instanceof Tensor)))} in it`);
  if (ts.length === 0) throw new ShapeError('stack: expected a non-empty list of tensors');
  return cat(ts.map((t) => t.unsqueeze(dim < 0 ? dim + t.shape.length + 1 : dim)), dim < 0 ? dim + ts[0].shape.length + 1 : dim);
}

// ---- scopes ----------------------------------------------------------------

let noGradScopes = 0;
let gradEnabledOutside = true;

/**
 * Runs fn with autograd recording off, like PyTorch's `with torch.no_grad():`.
 * fn may be async (`await sn.noGrad(async () => { for await (...) ... })`):
 * recording stays off until its promise settles, and, as with no_grad around
 * Python coroutines, for any other code that runs while it awaits. Scopes
 * are counted, so overlapping async scopes restore recording only when the
 * last one ends.
 */
export function noGrad<T>(fn: () => T): T {
  if (noGradScopes++ === 0) gradEnabledOutside = gradMode.enabled;
  gradMode.enabled = false;
  const exit = () => {
    if (--noGradScopes === 0) gradMode.enabled = gradEnabledOutside;
  };
  let out: T;
  try {
    out = fn();
  } catch (e) {
    exit();
    throw e;
  }
  if (out instanceof Promise) return out.finally(exit) as T;
  exit();
  return out;
}

/** steps values from start to end inclusive, evenly spaced (float32), computed as PyTorch does from both ends. */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  check.integer(steps, 'linspace: steps', 0);
  const out = new Float32Array(steps);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half || steps === 1 ? start + i * step : end - (steps - 1 - i) * step;
  const t = fromTyped(out, [steps], 'float32');
  return opts.requiresGrad ? t.requiresGrad_() : t;
}

/** Runs fn and disposes every tensor it created except those it returns. Never required: collected handles free themselves. */
export function tidy<T>(fn: () => T): T {
  tidyScopes.push([]);
  let out: T;
  try {
    out = fn();
  } finally {
    const made = tidyScopes.pop()!;
    const keep = new Set<Tensor>();
    const collect = (v: unknown) => {
      if (v instanceof Tensor) keep.add(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    collect(out!);
    for (const t of made) if (!keep.has(t)) t.dispose();
    // Kept tensors belong to the enclosing scope, if any.
    tidyScopes[tidyScopes.length - 1]?.push(...keep);
  }
  return out;
}
