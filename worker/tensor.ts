// Worker-side tensors. Movement ops make views (shape, strides, offset) over
// a shared refcounted storage; compute kernels read views directly or ask for
// a contiguous copy. A storage may be lazy: an elementwise expression not yet
// computed (see Ctx.map), computed the first time something needs its memory.

import type { DType } from '../lib/shape.js';
import { sizeOf, stridesOf } from '../lib/shape.js';
import type { Backend, Storage } from './backend/backend.js';
import type { Expr, View } from './backend/kernel.js';

/** A lazy storage's recipe: expr over input views, computed contiguously over `shape`. */
export interface Pending {
  expr: Expr;
  /** Inputs are never lazy themselves (Ctx.map inlines or computes them first). */
  inputs: Buf[];
  views: View[];
  dtypes: DType[];
  shape: number[];
  dtype: DType;
  /** Nodes of expr, and whether it calls a transcendental: the rules for inlining it again (Ctx.compose). */
  nodes: number;
  costly: boolean;
  /** Consumers it has been inlined into so far. */
  uses: number;
}

/** Who computes lazy storages (the Ctx): Buf asks it when its memory is needed or the Buf is dropped. */
export interface LazyHost {
  materialise(b: Buf): Storage;
  dropped(b: Buf): void;
}

export class Buf {
  refs = 0;
  /** In-place writes so far (or marked as going to be written): what was computed from older values cannot be recomputed. */
  version = 0;
  /** Lazy buffers whose recipes read this one: computed before anything writes it. */
  readonly readers = new Set<Buf>();
  /**
   * What the op that computed this keeps for its backward (softmax cross-entropy's gradient, which
   * its forward kernel writes too); let go with this buffer, or once the graph is freed.
   */
  saved: WT | null = null;
  constructor(
    private computed: Storage | null,
    private readonly backend: Backend,
    public pending: Pending | null = null,
    private readonly host: LazyHost | null = null,
  ) {}
  get storage(): Storage {
    return this.computed ?? this.host!.materialise(this);
  }
  /** Called by the host once it has computed the recipe into `s`. */
  settle(s: Storage) {
    this.computed = s;
    this.pending = null;
  }
  retain() { this.refs++; }
  release() {
    if (--this.refs > 0) return;
    this.dropSaved();
    if (this.computed) this.backend.free(this.computed);
    else this.host!.dropped(this);
  }
  dropSaved() {
    const saved = this.saved;
    this.saved = null;
    saved?.release();
  }
}

/** A recorded op application: the tape is the graph of these, reachable from outputs. */
export interface Node {
  op: string;
  inputs: WT[];
  attrs: any;
  /** Set once backward has consumed the graph (PyTorch frees it too). */
  freed: boolean;
}

export class WT {
  /** Owners: a page handle, graph nodes that use it, the scope that made it. */
  refs = 0;
  node: Node | null = null;
  requiresGrad = false;
  /** Page id of this leaf's gradient, once backward has produced one. */
  gradId = 0;
  readonly size: number;

  constructor(
    public buf: Buf,
    readonly shape: number[],
    readonly strides: number[],
    readonly offset: number,
    readonly dtype: DType,
  ) {
    buf.retain();
    this.size = sizeOf(shape);
  }

  get storage() { return this.buf.storage; }
  get view(): View { return { shape: this.shape, strides: this.strides, offset: this.offset }; }

  get contiguous(): boolean {
    const want = stridesOf(this.shape);
    return this.shape.every((d, i) => d === 1 || want[i] === this.strides[i]);
  }

  retain() { this.refs++; return this; }

  release() {
    if (--this.refs > 0) return;
    this.buf.release();
    this.freeGraph();
    this.node = null;
  }

  /** Lets go of the inputs the node kept alive; the node stays, marked freed, so a second backward is a clear error. */
  freeGraph() {
    const node = this.node;
    if (!node || node.freed) return;
    node.freed = true;
    this.buf.dropSaved();
    const inputs = node.inputs;
    node.inputs = [];
    for (const x of inputs) x.release();
  }
}
