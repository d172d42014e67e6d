// What an op's forward and backward see: helpers that build kernels over
// worker tensors, plus scoped lifetime so temporaries free themselves.
//
// Elementwise results are lazy (see map): a chain of maps becomes one map
// kernel, computed where something needs memory: a non-map kernel reading it,
// a read, a write into it or into a buffer its recipe reads. Not at the end
// of a batch: the page holds every intermediate until its handle is
// collected, so computing what is held would compute every step of a chain.

import type { DType, Shape } from '../lib/shape.js';
import { broadcastShapes, sameShape, sizeOf, stridesOf } from '../lib/shape.js';
import { fitsBuffer } from '../lib/validate.js';
import type { Backend, Storage, TypedArray } from './backend/backend.js';
import { c, type Expr, type Kernel, type MatmulKernel, type MultiMapKernel, type Place, type Prologue, type View } from './backend/kernel.js';
import { Buf, WT, type LazyHost, type Pending } from './tensor.js';
import { OPS } from './ops/index.js';

/**
 * The inlining rule: a lazy result is inlined into each consumer while the fused
 * expression stays within MAX_NODES nodes and the kernel within MAX_BUFFERS
 * distinct buffers (WebGPU's guaranteed storage bindings per stage); a second
 * consumer computes it to memory instead when its recipe is costly (a
 * transcendental, or more than CHEAP_NODES nodes), so shared work runs once and
 * trees cannot grow exponentially.
 */
const MAX_NODES = 96;
const MAX_BUFFERS = 8;
const CHEAP_NODES = 8;
/** Buffers a matmul operand's prologue may read (the output's binding counted), so both operands and an epilogue fit. */
const OPERAND_BUFFERS = 4;
/** A multi-tensor kernel's segment table (WebGPU keeps it in uniform words: 64 KiB on every adapter) stays within half of that. */
const MAX_SEGMENT_WORDS = 8192;
const TRANSCENDENTAL = new Set(['exp', 'log', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'softplus', 'pow']);

export interface CtxOptions {
  /** Lazy elementwise fusion (default on); off, every op runs as its own kernel (the tests' oracle). */
  fuse?: boolean;
  /** Which attention lowering runs (worker/ops/attention.ts); default composed. */
  attention?: 'fused' | 'composed';
}

/** An input of a kernel being built: a computed buffer read through a view. */
interface Operand { buf: Buf; view: View; dtype: DType }

export class Ctx implements LazyHost {
  /**
   * Open scopes, innermost last. There is no outer scope: a tensor made with none open would be
   * kept for the engine's lifetime, so making one throws (every engine entry point opens one).
   */
  private scopes: WT[][] = [];
  seed = 0;
  randCounter = 0;
  /** The page-level op being run, for errors kernels raise (an embedding's out-of-range index names 'embedding'). */
  opName = 'gather';
  /** Kernels handed to the backend so far (sn.memory().kernels). */
  kernels = 0;
  readonly fuse: boolean;
  readonly attention: 'fused' | 'composed';
  /** Told when a lazy buffer has been computed into memory (the tensor table counts what idle tensors hold). */
  onComputed: ((buf: Buf) => void) | null = null;
  /** Live lazy buffers (not yet computed nor dropped). */
  private lazy = new Set<Buf>();
  /** Distinct storages one kernel may bind: the real backend's, kept while a recorder stands in for it. */
  private readonly maxBindings: number;
  /**
   * Elements segments may share one multi-tensor kernel with: on WebGPU (SwiftShader measured) a
   * kernel branching between segments ran the seed MLP's Adam update ~3x slower than one kernel
   * per large parameter, so only small tensors (step counts, biases) share one there.
   */
  private readonly maxSegmentElements: number;

  /** backend is swapped for a recorder while a step plan records (worker/plan.ts). */
  constructor(public backend: Backend, { fuse = true, attention = 'composed' }: CtxOptions = {}) {
    this.fuse = fuse;
    this.maxBindings = backend.maxStorageBindings ?? Infinity;
    this.attention = attention;
    this.maxSegmentElements = backend.name === 'webgpu' ? 4096 : Infinity;
  }

  /** Runs fn; tensors made inside are released at the end unless retained elsewhere. */
  scoped<T>(fn: () => T): T {
    this.scopes.push([]);
    try {
      return fn();
    } finally {
      for (const t of this.scopes.pop()!) t.release();
    }
  }

  private track(t: WT): WT {
    const scope = this.scopes[this.scopes.length - 1];
    if (!scope) throw new Error('shadenet internal error: a tensor was made outside ctx.scoped(), where nothing would ever free it');
    scope.push(t.retain());
    return t;
  }

  empty(shape: Shape, dtype: DType = 'float32'): WT {
    const s = [...shape];
    fitsBuffer(s, this.backend.maxBufferBytes, 'allocation');
    const buf = new Buf(this.backend.alloc(sizeOf(s), dtype), this.backend);
    return this.track(new WT(buf, s, stridesOf(s), 0, dtype));
  }

  fromData(data: TypedArray, shape: Shape, dtype: DType): WT {
    const t = this.empty(shape, dtype);
    this.backend.write(t.storage, data);
    return t;
  }

  view(x: WT, shape: Shape, strides: number[], offset: number): WT {
    return this.track(new WT(x.buf, [...shape], strides, offset, x.dtype));
  }

  /** View of x broadcast to `shape` (stride 0 on broadcast dims). */
  expand(x: WT, shape: Shape): WT {
    return this.view(x, shape, broadcastView(x, shape).strides, x.offset);
  }

  /** Dense and starting at element 0: kernels other than map and matmul read storage from its start. */
  contiguous(x: WT): WT {
    return x.contiguous && x.offset === 0 ? x : this.map({ in: 0 }, [x], x.shape, x.dtype);
  }

  /** Reshape as a view when the layout allows (at any offset), else through a contiguous copy. */
  reshape(x: WT, shape: Shape): WT {
    const c = x.contiguous ? x : this.contiguous(x);
    return this.view(c, shape, stridesOf(shape), c.offset);
  }

  full(shape: Shape, value: number, dtype: DType = 'float32'): WT {
    return this.map(c(value), [], shape, dtype);
  }

  /** Elementwise: inputs broadcast to a common shape; a new contiguous result, lazy unless fusion is off. */
  map(expr: Expr, inputs: WT[], shape?: Shape, dtype: DType = 'float32'): WT {
    const outShape = shape ? [...shape] : inputs.reduce<number[]>((s, t) => broadcastShapes(s, t.shape), []);
    if (!this.fuse) {
      const out = this.empty(outShape, dtype);
      this.mapInto([expr], inputs, [out]);
      return out;
    }
    fitsBuffer(outShape, this.backend.maxBufferBytes, 'allocation');
    const k = this.compose([expr], inputs, outShape, dtype, [], MAX_BUFFERS - 1);
    const p: Pending = {
      expr: k.exprs[0], inputs: k.ops.map((o) => o.buf), views: k.ops.map((o) => o.view), dtypes: k.ops.map((o) => o.dtype),
      shape: outShape, dtype, nodes: nodeCount(k.exprs[0]), costly: isCostly(k.exprs[0]), uses: 0,
    };
    const buf = new Buf(null, this.backend, p, this);
    this.lazy.add(buf);
    for (const b of p.inputs) { b.retain(); b.readers.add(buf); }
    return this.track(new WT(buf, outShape, stridesOf(outShape), 0, dtype));
  }

  /**
   * Elementwise kernel writing existing tensors (in place when an output is also an input).
   * Lazy results that read the outputs' old values are computed first.
   */
  mapInto(exprs: Expr[], inputs: WT[], outputs: WT[]) {
    if (outputs.some((o) => o.size === 0)) return;
    const shape = outputs[0].shape;
    const written = outputs.map((o) => o.buf);
    this.beforeWrite(written);
    const k = this.compose(exprs, inputs, shape, outputs[0].dtype, written, MAX_BUFFERS);
    this.dispatch(
      { kind: 'map', shape: [...shape], exprs: k.exprs, inputs: k.ops.map((o) => o.view), inDtypes: k.ops.map((o) => o.dtype), outputs: outputs.map((t) => t.view), dtype: outputs[0].dtype },
      k.ops.map((o) => o.buf), written,
    );
  }

  /**
   * One elementwise program over many tensor groups (a MultiMapKernel): segment s evaluates
   * `exprs` over segs[s].inputs and writes segs[s].outputs in place, all shaped as the first
   * output (scalar slots, where `scalar[i]`, are one element read by the whole segment).
   * Segments share one kernel while their distinct storages fit the backend's binding limit.
   * A lazy input that only copies memory (a gradient handle) is read where that memory lies.
   */
  runSegments(exprs: Expr[], scalar: boolean[], segs: { inputs: WT[]; outputs: WT[] }[]) {
    const live = segs.filter((s) => s.outputs[0].size > 0);
    this.beforeWrite(live.flatMap((s) => s.outputs.map((o) => o.buf)));
    const placed = live.map(({ inputs, outputs }) => {
      const shape = outputs[0].shape;
      const cols = shape.length ? shape[shape.length - 1] : 1;
      return {
        rows: outputs[0].size / cols, cols,
        inputs: inputs.map((t, i) => this.placeOf(t, scalar[i] ? null : shape)),
        outputs: outputs.map((t) => {
          const strides = t.contiguous && matrixStrides(t.view);
          if (!strides || !sameShape(t.shape, shape)) throw new Error('runSegments: outputs must be contiguous and alike');
          return { buf: t.buf, offset: t.offset, strides };
        }),
      };
    });
    for (let start = 0; start < placed.length;) {
      const ins: Buf[] = [];
      const outs: Buf[] = [];
      const segments: MultiMapKernel['segments'] = [];
      const index = (list: Buf[], { buf, offset, strides }: Located): Place => {
        const at = list.indexOf(buf);
        return { storage: at >= 0 ? at : list.push(buf) - 1, offset, strides };
      };
      for (; start < placed.length; start++) {
        const seg = placed[start];
        const bound = new Set([...ins, ...outs, ...seg.inputs.map((p) => p.buf), ...seg.outputs.map((p) => p.buf)]);
        const words = (segments.length + 1) * (2 + 3 * (seg.inputs.length + seg.outputs.length));
        const elements = segments.reduce((n, sg) => n + sg.rows * sg.cols, seg.rows * seg.cols);
        if (segments.length && (bound.size > this.maxBindings || words > MAX_SEGMENT_WORDS || elements > this.maxSegmentElements)) break;
        segments.push({ rows: seg.rows, cols: seg.cols, inputs: seg.inputs.map((p) => index(ins, p)), outputs: seg.outputs.map((p) => index(outs, p)) });
      }
      this.dispatch({ kind: 'multimap', exprs, segments }, ins, outs);
    }
  }

  /**
   * Where a multi-tensor kernel reads `t` (shaped `shape`, or one element when `shape` is
   * null): its memory, or the memory a lazy copy of memory reads, walked as a matrix.
   */
  private placeOf(t: WT, shape: number[] | null): Located {
    if (t.dtype !== 'float32') throw new Error(`runSegments: float32 inputs only, got ${t.dtype}`);
    if (!shape) {
      if (t.size !== 1) throw new Error(`runSegments: a scalar slot needs a one-element tensor, got ${t.size} elements`);
      if (t.buf.pending) this.materialise(t.buf);
      return { buf: t.buf, offset: t.offset, strides: [0, 0] };
    }
    if (!sameShape(t.shape, shape)) throw new Error(`runSegments: an input of shape [${t.shape}] where [${shape}] is updated`);
    const p = t.buf.pending;
    if (p && 'in' in p.expr && p.expr.in === 0 && p.dtypes[0] === 'float32' && t.contiguous) {
      const strides = matrixStrides({ ...p.views[0], offset: p.views[0].offset + t.offset });
      if (strides) return { buf: p.inputs[0], offset: p.views[0].offset + t.offset, strides };
    }
    const direct = matrixStrides(t.view);
    const c = direct ? t : this.contiguous(t);
    if (c.buf.pending) this.materialise(c.buf);
    return { buf: c.buf, offset: c.offset, strides: direct ?? matrixStrides(c.view)! };
  }

  run(kernel: Kernel, inputs: WT[], outputs: WT[]) {
    if (outputs.some((o) => o.size === 0)) return;
    this.beforeWrite(outputs.map((o) => o.buf));
    this.dispatch(kernel, inputs.map((t) => t.buf), outputs.map((t) => t.buf));
  }

  private dispatch(kernel: Kernel, inputs: Buf[], outputs: Buf[]) {
    const ins = inputs.map((b) => b.storage);
    this.checkNotLost(ins);
    this.kernels++;
    const outs = outputs.map((b) => b.storage);
    this.backend.dispatch(this.backend.prepare(kernel, ins, outs), kernel, ins, outs);
  }

  private checkNotLost(ins: Storage[]) {
    if (this.backend.isLost && ins.some((s) => this.backend.isLost!(s))) {
      throw new Error(`${this.opName}: an input was lost with the WebGPU device (computed after the last host copy, so it could not be restored)`);
    }
  }

  /** What must happen before a kernel writes these buffers: lazy ones are computed (it writes part of them), and so is every lazy recipe that reads them (it must see the old values). */
  private beforeWrite(bufs: Buf[]) {
    for (const b of bufs) {
      if (b.pending) this.materialise(b);
      for (const r of [...b.readers]) this.materialise(r);
    }
  }

  /** Computes a lazy buffer into memory (Buf.storage calls this). */
  materialise(buf: Buf): Storage {
    const p = buf.pending!;
    const ins = p.inputs.map((b) => b.storage);
    this.checkNotLost(ins);
    const storage = this.backend.alloc(sizeOf(p.shape), p.dtype);
    this.forget(buf, p);
    if (sizeOf(p.shape) > 0) {
      const kernel: Kernel = { kind: 'map', shape: p.shape, exprs: [p.expr], inputs: p.views, inDtypes: p.dtypes, outputs: [{ shape: p.shape, strides: stridesOf(p.shape), offset: 0 }], dtype: p.dtype };
      this.kernels++;
      this.backend.dispatch(this.backend.prepare(kernel, ins, [storage]), kernel, ins, [storage]);
    }
    buf.settle(storage);
    for (const b of p.inputs) b.release();
    this.onComputed?.(buf);
    return storage;
  }

  /**
   * Computes every live lazy buffer. A step plan starts so: a lazy result made before the step
   * (fit's sums, optimizer state) and computed inside it would be recomputed at every replay.
   */
  materialiseAll(keep?: (b: Buf) => boolean) {
    // One reading memory lost with the WebGPU device is left lazy: its own use says so.
    const lost = (b: Buf) => !!this.backend.isLost && b.pending!.inputs.some((i) => this.backend.isLost!(i.storage));
    for (const b of [...this.lazy]) if (b.pending && !keep?.(b) && !lost(b)) this.materialise(b);
  }

  /** A lazy buffer nobody holds any more: its recipe lets go of its inputs. */
  dropped(buf: Buf) {
    const p = buf.pending!;
    this.forget(buf, p);
    buf.pending = null;
    for (const b of p.inputs) b.release();
  }

  private forget(buf: Buf, p: Pending) {
    this.lazy.delete(buf);
    for (const b of p.inputs) b.readers.delete(buf);
  }

  /**
   * The kernel inputs and expressions for `exprs` over `inputs` broadcast to `shape`:
   * lazy inputs are inlined where the rule above allows (and their view composes),
   * else computed first. The kernel writes `written` and may bind `budget` buffers.
   * Input indices below `reserved` stand for values the kernel supplies itself (a matmul's sum).
   */
  private compose(exprs: Expr[], inputs: WT[], shape: number[], dtype: DType, written: Buf[], budget: number, reserved = 0): { exprs: Expr[]; ops: Operand[] } {
    const views = inputs.map((t) => broadcastView(t, shape));
    const through = inputs.map((t, i) => {
      const p = t.buf.pending;
      if (!this.fuse || !p || p.dtype !== dtype || (p.uses > 0 && (p.costly || p.nodes > CHEAP_NODES))) return null;
      return viewsThrough(views[i], p);
    });
    const uses = new Array<number>(inputs.length).fill(0);
    const countUses = (e: Expr) => { if ('in' in e) { if (e.in >= reserved) uses[e.in - reserved]++; } else if ('op' in e) e.args.forEach(countUses); };
    exprs.forEach(countUses);
    // Buffers the kernel touches so far: outputs, plus inputs read as they are.
    const bufs = new Set<Buf>(written);
    inputs.forEach((t, i) => { if (!through[i]) bufs.add(t.buf); });
    let nodes = exprs.reduce((n, e) => n + nodeCount(e), 0);
    let undecided = through.filter(Boolean).length;
    const inline = through.map((th, i) => {
      if (!th) return false;
      undecided--;
      const p = inputs[i].buf.pending!;
      const fresh = new Set(p.inputs.filter((b) => !bufs.has(b))).size;
      const more = uses[i] * (p.nodes - 1);
      if (nodes + more > MAX_NODES || bufs.size + fresh + undecided > budget) {
        bufs.add(inputs[i].buf);
        return false;
      }
      nodes += more;
      p.inputs.forEach((b) => bufs.add(b));
      return true;
    });
    // A lazy input read somewhere as it is (its view did not compose) is computed: every other read of it then reads memory too.
    const computed = new Set(inputs.filter((t, i) => !inline[i] && t.buf.pending).map((t) => t.buf));
    inputs.forEach((t, i) => { if (computed.has(t.buf)) inline[i] = false; });
    const ops: Operand[] = [];
    const slot = (buf: Buf, view: View, dt: DType) => {
      let j = ops.findIndex((o) => o.buf === buf && o.dtype === dt && sameView(o.view, view));
      if (j < 0) j = ops.push({ buf, view, dtype: dt }) - 1;
      return j + reserved;
    };
    const sub = inputs.map((t, i): Expr => {
      if (!inline[i]) {
        if (t.buf.pending) this.materialise(t.buf);
        return { in: slot(t.buf, views[i], t.dtype) };
      }
      const p = t.buf.pending!;
      p.uses++;
      const th = through[i]!;
      const slots = p.inputs.map((b, j) => slot(b, th[j], p.dtypes[j]));
      return substitute(p.expr, slots.map((j): Expr => ({ in: j })));
    });
    const own = Array.from({ length: reserved }, (_, i): Expr => ({ in: i }));
    return { exprs: exprs.map((e) => substitute(e, [...own, ...sub])), ops };
  }

  /**
   * Runs a kernel that reads x's elements in row-major order, through a prologue where that
   * saves work: x's lazy recipe inlined, or a strided x read in place. `kernel` takes the
   * prologue, if any, and returns the kernel to run.
   */
  runReading(x: WT, outputs: WT[], kernel: (prologue?: Prologue) => Kernel): void {
    if (outputs.some((o) => o.size === 0)) return;
    const p = x.buf.pending;
    if (!p && x.contiguous && x.offset === 0) return this.run(kernel(), [x], outputs);
    // A whole lazy result (maybe reshaped) is walked in its recipe's own shape: same order, and its views compose.
    const shape = p && x.contiguous && x.offset === 0 && x.size === sizeOf(p.shape) ? p.shape : x.shape;
    const seen = shape === x.shape ? x : this.track(new WT(x.buf, [...shape], stridesOf(shape), 0, x.dtype));
    this.beforeWrite(outputs.map((o) => o.buf));
    const k = this.compose([{ in: 0 }], [seen], shape, x.dtype, outputs.map((o) => o.buf), MAX_BUFFERS);
    const prologue = { shape: [...shape], expr: k.exprs[0], inputs: k.ops.map((o) => o.view), inDtypes: k.ops.map((o) => o.dtype) };
    this.dispatch(kernel(prologue), k.ops.map((o) => o.buf), outputs.map((o) => o.buf));
  }

  /**
   * A matmul [...batch, M, N] into `out` whose store applies `expr`: input 0 is the sum,
   * input k + 1 is extra[k] broadcast to out's shape (lazy ones inlined). A lazy operand is
   * computed as the kernel reads it (a prologue) where its recipe may be inlined. With `sums`
   * (a [N] tensor; batch 1, no epilogue) the kernel also writes B's column sums there.
   */
  runMatmul(kernel: Omit<MatmulKernel, 'epilogue' | 'colSums'>, a: WT, b: WT, out: WT, expr: Expr, extra: WT[], sums?: WT) {
    if (out.size === 0) return;
    if (sums && (kernel.batch !== 1 || extra.length || !('in' in expr))) throw new Error('matmul: column sums need batch 1 and no epilogue');
    const { batch, m, n, k } = kernel;
    const aPrologue = this.operandPrologue(a, kernel.a, [batch, m, k], out, OPERAND_BUFFERS);
    const bPrologue = this.operandPrologue(b, kernel.b, [batch, k, n], out, OPERAND_BUFFERS);
    const aBufs = aPrologue?.bufs ?? [a.buf];
    const bBufs = bPrologue?.bufs ?? [b.buf];
    const operands = { ...(aPrologue ? { aPrologue: aPrologue.prologue } : {}), ...(bPrologue ? { bPrologue: bPrologue.prologue } : {}) };
    if (sums) return this.dispatch({ ...kernel, ...operands, colSums: true }, [...aBufs, ...bBufs], [out.buf, sums.buf]);
    if (!extra.length && 'in' in expr) return this.dispatch({ ...kernel, ...operands }, [...aBufs, ...bBufs], [out.buf]);
    const shape = [batch, m, n];
    // Each extra input as a [batch, M, N] view (a copy where its batch dims do not fold).
    const flat = extra.map((t) => {
      const strides = reshapeStrides(out.shape, broadcastView(t, out.shape).strides, shape);
      return strides ? this.view(t, shape, strides, t.offset) : this.reshape(this.contiguous(this.expand(t, out.shape)), shape);
    });
    const budget = MAX_BUFFERS - new Set([...aBufs, ...bBufs]).size;
    const e = this.compose([expr], flat, shape, 'float32', [out.buf], budget, 1);
    this.dispatch({ ...kernel, ...operands, epilogue: { expr: e.exprs[0], inputs: e.ops.map((o) => o.view), inDtypes: e.ops.map((o) => o.dtype) } }, [...aBufs, ...bBufs, ...e.ops.map((o) => o.buf)], [out.buf]);
  }

  /**
   * A lazy matmul operand read through `layout` as [batch, rows, cols], as a prologue over its
   * recipe's inputs; null when t is computed (or gets computed: its recipe cannot be inlined).
   */
  private operandPrologue(t: WT, layout: MatmulKernel['a'], shape: number[], out: WT, budget: number): { prologue: Prologue; bufs: Buf[] } | null {
    if (!this.fuse || !t.buf.pending) return null;
    const seen = this.track(new WT(t.buf, shape, [layout.batchStride, layout.rowStride, layout.colStride], layout.offset, t.dtype));
    const k = this.compose([{ in: 0 }], [seen], shape, 'float32', [out.buf], budget);
    if (!t.buf.pending && k.ops.length === 1 && k.ops[0].buf === t.buf) return null;
    return { prologue: { shape, expr: k.exprs[0], inputs: k.ops.map((o) => o.view), inDtypes: k.ops.map((o) => o.dtype) }, bufs: k.ops.map((o) => o.buf) };
  }

  /** Applies a registered op without recording it (backward rules compose ops this way). */
  op(name: string, inputs: WT[], attrs: any = {}): WT {
    const def = OPS[name];
    if (!def) throw new Error(`unknown op '${name}'`);
    return def.forward(this, inputs, attrs);
  }

  /** Sums a broadcast gradient back down to `shape`. */
  sumTo(g: WT, shape: Shape): WT {
    if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
    const lead = g.shape.length - shape.length;
    const dims = g.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1));
    const summed = dims.length ? this.op('sum', [g], { dims, keepdim: true }) : g;
    return this.reshape(summed, shape);
  }

  nextRandKey() {
    return { seed: this.seed, counter: this.randCounter++ };
  }
}

function nodeCount(e: Expr): number {
  return 'op' in e ? e.args.reduce((n, a) => n + nodeCount(a), 1) : 1;
}

function isCostly(e: Expr): boolean {
  return 'op' in e && (TRANSCENDENTAL.has(e.op) || e.args.some(isCostly));
}

/** e with every input i replaced by sub[i]. */
function substitute(e: Expr, sub: Expr[]): Expr {
  if ('in' in e) return sub[e.in];
  if ('c' in e) return e;
  return { op: e.op, args: e.args.map((a) => substitute(a, sub)) };
}

function sameView(a: View, b: View) {
  return a.offset === b.offset && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i] && a.strides[i] === b.strides[i]);
}

/**
 * Reading lazy p through view v (strides into p's contiguous layout) as reads of p's
 * inputs: one view per input, or null when v does not compose with them.
 * Views that pick, slice, permute or broadcast p's dims compose directly; a
 * reshape of the whole of p composes when every input view can be reshaped too.
 */
export function viewsThrough(v: View, p: Pick<Pending, 'shape' | 'views'>): View[] | null {
  if (sizeOf(v.shape) === 0) return p.views.map(() => ({ shape: v.shape, strides: v.shape.map(() => 0), offset: 0 }));
  const direct = dimMap(v, p.shape);
  if (direct) return p.views.map((u) => applyDimMap(direct, v, u));
  const q = denseOrder(v, sizeOf(p.shape));
  if (!q) return null;
  const reshaped = p.views.map((u) => reshapeStrides(p.shape, u.strides, q));
  const m = dimMap(v, q);
  if (!m || reshaped.some((s) => !s)) return null;
  return p.views.map((u, i) => applyDimMap(m, v, { shape: q, strides: reshaped[i]!, offset: u.offset }));
}

interface DimMap { start: number[]; dims: ([dim: number, step: number] | null)[] }

/** Which dim of `shape` (contiguous) each dim of v walks, and by how many steps; null if some dim of v spans several. */
function dimMap(v: View, shape: number[]): DimMap | null {
  const cs = stridesOf(shape);
  let rem = v.offset;
  const start = shape.map((_, k) => {
    const i = Math.floor(rem / cs[k]);
    rem -= i * cs[k];
    return i;
  });
  const extent = shape.map(() => 0);
  const dims: DimMap['dims'] = [];
  for (let j = 0; j < v.shape.length; j++) {
    const n = v.shape[j], s = v.strides[j];
    if (n === 1 || s === 0) { dims.push(null); continue; }
    const k = shape.findIndex((d, i) => d > 1 && cs[i] <= s);
    if (s < 0 || k < 0 || s % cs[k]) return null;
    extent[k] += (s / cs[k]) * (n - 1);
    dims.push([k, s / cs[k]]);
  }
  return shape.every((d, k) => start[k] + extent[k] < d || d === 0) ? { start, dims } : null;
}

function applyDimMap(m: DimMap, v: View, u: View): View {
  return {
    shape: [...v.shape],
    strides: m.dims.map((d) => (d ? d[1] * u.strides[d[0]] : 0)),
    offset: m.start.reduce((o, i, k) => o + i * u.strides[k], u.offset),
  };
}

/** v's walked dims sorted outermost first, when they tile a dense block of `size` elements from 0 (a reshape, maybe permuted and broadcast). */
function denseOrder(v: View, size: number): number[] | null {
  if (v.offset !== 0) return null;
  const dims = v.shape.map((n, j) => [n, v.strides[j]]).filter(([n, s]) => n > 1 && s !== 0).sort((a, b) => b[1] - a[1]);
  let expect = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (dims[i][1] !== expect) return null;
    expect *= dims[i][0];
  }
  return expect === size ? dims.map(([n]) => n) : null;
}

/** Strides that view the same elements as (shape, strides) under `next`, or null when that needs a copy (PyTorch's computeStride). */
function reshapeStrides(shape: number[], strides: number[], next: number[]): number[] | null {
  if (!shape.length) return next.map(() => 0);
  const out = new Array<number>(next.length).fill(0);
  let viewD = next.length - 1;
  let base = strides[strides.length - 1];
  let tensorN = 1, viewN = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorN *= shape[d];
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorN * base)) {
      while (viewD >= 0 && (viewN < tensorN || next[viewD] === 1)) {
        out[viewD] = viewN * base;
        viewN *= next[viewD];
        viewD--;
      }
      if (viewN !== tensorN) return null;
      if (d > 0) { base = strides[d - 1]; tensorN = 1; viewN = 1; }
    }
  }
  return viewD === -1 ? out : null;
}

/** How a kernel reads x broadcast to `shape`: stride 0 on the dims x lacks or has as 1. */
function broadcastView(x: WT, shape: Shape): View {
  const off = shape.length - x.shape.length;
  return { shape: [...shape], strides: shape.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : x.strides[i - off])), offset: x.offset };
}

/** A storage place for runSegments. */
interface Located { buf: Buf; offset: number; strides: [number, number] }

/**
 * The [row, col] strides that walk a view as a matrix of its leading dims by its last one,
 * in row-major order, or null when the leading dims do not merge into one stride.
 */
function matrixStrides(v: View): [number, number] | null {
  const r = v.shape.length;
  if (r === 0) return [0, 0];
  const col = v.strides[r - 1];
  let row: number | null = null;
  let span = 0;
  for (let d = r - 2; d >= 0; d--) {
    if (v.shape[d] === 1) continue;
    if (row === null) row = v.strides[d];
    else if (v.strides[d] !== span) return null;
    span = v.strides[d] * v.shape[d];
  }
  return [row ?? 0, col];
}
