// What an op's forward and backward see: helpers that build kernels over
// worker tensors, plus scoped lifetime so temporaries free themselves.

import type { DType, Shape } from '../lib/shape.js';
import { broadcastShapes, sizeOf, stridesOf } from '../lib/shape.js';
import { fitsBuffer } from '../lib/validate.js';
import type { Backend, TypedArray } from './backend/backend.js';
import type { Expr, Kernel, View } from './backend/kernel.js';
import { Buf, WT } from './tensor.js';
import { OPS } from './ops/index.js';

export class Ctx {
  private scopes: WT[][] = [[]];
  seed = 0;
  randCounter = 0;
  /** The page-level op being run, for errors kernels raise (an embedding's out-of-range index names 'embedding'). */
  opName = 'gather';
  /** Kernels handed to the backend so far (sn.memory().kernels). */
  kernels = 0;

  /** Swapped for a recorder while a step plan records (worker/plan.ts). */
  constructor(public backend: Backend) {}

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
    this.scopes[this.scopes.length - 1].push(t.retain());
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
    const out = this.empty(shape, dtype);
    this.run({ kind: 'map', shape: [...shape], exprs: [{ c: value }], inputs: [], inDtypes: [], outputs: [out.view], dtype }, [], [out]);
    return out;
  }

  /** One elementwise kernel: inputs broadcast to a common shape; new contiguous output. */
  map(expr: Expr, inputs: WT[], shape?: Shape, dtype: DType = 'float32'): WT {
    const outShape = shape ? [...shape] : inputs.reduce<number[]>((s, t) => broadcastShapes(s, t.shape), []);
    const out = this.empty(outShape, dtype);
    this.mapInto([expr], inputs, [out]);
    return out;
  }

  /** Elementwise kernel writing existing tensors (in place when an output is also an input). */
  mapInto(exprs: Expr[], inputs: WT[], outputs: WT[]) {
    const shape = outputs[0].shape;
    const views = inputs.map((t) => broadcastView(t, shape));
    this.run(
      { kind: 'map', shape: [...shape], exprs, inputs: views, inDtypes: inputs.map((t) => t.dtype), outputs: outputs.map((t) => t.view), dtype: outputs[0].dtype },
      inputs, outputs,
    );
  }

  run(kernel: Kernel, inputs: WT[], outputs: WT[]) {
    if (outputs.some((o) => o.size === 0)) return;
    this.kernels++;
    const ins = inputs.map((t) => t.storage);
    const outs = outputs.map((t) => t.storage);
    this.backend.dispatch(this.backend.prepare(kernel, ins, outs), kernel, ins, outs);
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

/** How a kernel reads x broadcast to `shape`: stride 0 on the dims x lacks or has as 1. */
function broadcastView(x: WT, shape: Shape): View {
  const off = shape.length - x.shape.length;
  return { shape: [...shape], strides: shape.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : x.strides[i - off])), offset: x.offset };
}
