// Keras-style layers: built from the same engine ops and nn modules as the
// PyTorch-style API (one engine, two front doors). A layer knows its config
// (for toJSON), builds its weights once the input shape is known, and maps a
// batch (plus an optional mask) to a batch.

import { runtime } from '../context.js';
import { Buffer, Module, Parameter } from '../nn/module.js';
import { fmt, ShapeError, sizeOf } from '../shape.js';
import { noGrad, record, Tensor, tensor, type NestedArray } from '../tensor.js';

/** A shape without the batch dim; null marks a dim known only at run time (the time axis). */
export type LayerShape = (number | null)[];

export interface LayerArgs {
  name?: string;
  inputShape?: LayerShape;
}

export interface CallOptions {
  training: boolean;
  /** [batch, time] 1/0 mask from embedding({ maskZero }) or masking(). */
  mask: Tensor | null;
}

/** A value for setWeights: a Tensor, a nested array, or a flat (typed) array of the right size. */
export type WeightValue = Tensor | NestedArray | ArrayLike<number>;

/**
 * One weight as Keras lays it out. `value` is the parameter or buffer that holds it, in whatever
 * layout the layer computes with; `toKeras`/`fromKeras` convert when that differs from Keras's.
 */
export interface KerasWeight {
  name: string;
  value: Parameter | Buffer;
  trainable: boolean;
  toKeras?: (t: Tensor) => Tensor;
  fromKeras?: (t: Tensor) => Tensor;
}

/**
 * A placeholder in a functional model's graph (TF.js's SymbolicTensor): its shape (batch first,
 * null where unknown) and the layer call that produces it.
 */
export class SymbolicTensor {
  constructor(readonly shape: (number | null)[], readonly node: GraphNode, readonly outputIndex: number) {}
  get rank() { return this.shape.length; }
}

/** One call of a layer on symbolic inputs. */
export interface GraphNode {
  layer: Layer;
  inputs: SymbolicTensor[];
  outputs: SymbolicTensor[];
}

type ApplyInput = Tensor | SymbolicTensor;

const counters = new Map<string, number>();
const uniqueName = (base: string) => {
  const n = counters.get(base) ?? 0;
  counters.set(base, n + 1);
  return n ? `${base}_${n}` : base;
};

export abstract class Layer extends Module {
  readonly name: string;
  readonly inputShape: LayerShape | null;
  /** Shape after this layer (no batch dim), set by build(). */
  outputShape: LayerShape | null = null;

  constructor(readonly className: string, args: LayerArgs) {
    super();
    this.name = args.name ?? uniqueName(className.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase());
    this.inputShape = args.inputShape ? [...args.inputShape] : null;
  }

  /** Creates weights for `inputShape` and returns the output shape. */
  build(inputShape: LayerShape): LayerShape {
    this.outputShape = this.computeOutputShape(inputShape);
    return this.outputShape;
  }

  abstract computeOutputShape(inputShape: LayerShape): LayerShape;

  abstract call(x: Tensor, opts: CallOptions): Tensor;

  /** The mask after this layer: passed through unless the layer changes it. */
  computeMask(_x: Tensor, mask: Tensor | null): Tensor | null {
    return mask;
  }

  /** The constructor arguments, as Keras's get_config (for toJSON). */
  abstract getConfig(): Record<string, unknown>;

  /** Runs the layer on x, building it from x's shape on the first call (as apply does). */
  forward(x: Tensor): Tensor {
    if (!this.built) this.build(x.shape.slice(1));
    return this.call(x, { training: this.training, mask: null });
  }

  /** Whether build() has run (weights exist). */
  get built() {
    return this.outputShape !== null;
  }

  /** Shapes of this layer's outputs for these input shapes (no batch dim); builds the layer on its first call. */
  buildFor(shapes: LayerShape[]): LayerShape[] {
    if (shapes.length !== 1) throw new Error(`layer '${this.name}' takes one input, got ${shapes.length}`);
    if (!this.built) return [this.build(shapes[0])];
    return [this.computeOutputShape(shapes[0])];
  }

  /** Runs the layer on its inputs; returns its outputs (several for returnState) and their mask. */
  invoke(xs: Tensor[], masks: (Tensor | null)[], training: boolean): { outputs: Tensor[]; mask: Tensor | null } {
    const out = this.call(xs[0], { training, mask: masks[0] });
    return { outputs: [out], mask: this.computeMask(xs[0], masks[0]) };
  }

  /**
   * TF.js's layer.apply: on sn.input() placeholders it records a call in the functional graph and
   * returns placeholders for the outputs; on Tensors it runs the layer (building it from their shape
   * on the first call). Several inputs come as a list or as further arguments: mha.apply(query, value).
   */
  apply(inputs: SymbolicTensor | SymbolicTensor[], ...rest: (SymbolicTensor | Record<string, unknown> | undefined)[]): SymbolicTensor | SymbolicTensor[];
  apply(inputs: Tensor | Tensor[], ...rest: (Tensor | Record<string, unknown> | undefined)[]): Tensor | Tensor[];
  apply(inputs: ApplyInput | ApplyInput[], ...rest: (ApplyInput | Record<string, unknown> | undefined)[]): ApplyInput | ApplyInput[] {
    const list = [...(Array.isArray(inputs) ? inputs : [inputs])];
    for (const r of rest) {
      if (r instanceof Tensor || r instanceof SymbolicTensor) list.push(r);
      else if (r !== undefined && Object.keys(r).some((k) => k !== 'training')) {
        throw new Error(`layer '${this.name}': apply() takes the inputs and an optional { training }; got ${Object.keys(r).join(', ')}`);
      }
    }
    if (list.every((t) => t instanceof SymbolicTensor)) {
      const syms = list as SymbolicTensor[];
      const shapes = this.buildFor(syms.map((s) => s.shape.slice(1)));
      const node: GraphNode = { layer: this, inputs: syms, outputs: [] };
      node.outputs = shapes.map((s, i) => new SymbolicTensor([null, ...s], node, i));
      return node.outputs.length === 1 ? node.outputs[0] : node.outputs;
    }
    if (!list.every((t) => t instanceof Tensor)) throw new TypeError(`layer '${this.name}': apply() takes Tensors or sn.input() placeholders, not a mix`);
    const ts = list as Tensor[];
    this.buildFor(ts.map((t) => t.shape.slice(1)));
    const { outputs } = this.invoke(ts, ts.map(() => null), false);
    return outputs.length === 1 ? outputs[0] : outputs;
  }

  /** This layer's weights in Keras's order and layout; by default its parameters, then its buffers, as they are. */
  kerasWeights(): KerasWeight[] {
    return [
      ...this.namedParameters().map(([name, value]) => ({ name, value, trainable: true })),
      ...this.namedBuffers().map(([name, value]) => ({ name, value, trainable: false })),
    ];
  }

  /** Copies of the weights in Keras's layout and order (TF.js's layer.getWeights()). */
  getWeights(trainableOnly = false): Tensor[] {
    return readWeights(this.kerasWeights(), trainableOnly);
  }

  /** Sets every weight from Keras-layout values (Tensors or arrays), in getWeights()'s order. */
  setWeights(values: WeightValue[]) {
    assignWeights(this.kerasWeights(), values, `layer '${this.name}'`);
  }

  countParams(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** @internal Throws a ShapeError naming this layer, what it expected and the shape it got. */
  shapeError(expected: string, got: LayerShape): never {
    throw new ShapeError(`layer '${this.name}' expected input ${expected} but got shape [batch, ${got.map((d) => d ?? 'null').join(', ')}]`);
  }
}

/** The Keras-layout shape of a weight, without computing anything. */
const kerasShape = (w: KerasWeight) => (w.toKeras ? noGrad(() => w.toKeras!(w.value)).shape : w.value.shape);

/** @internal Copies of weights in Keras's layout (trainable ones only if asked): getWeights() of layers and models. */
export function readWeights(weights: KerasWeight[], trainableOnly: boolean): Tensor[] {
  return noGrad(() => weights
    .filter((w) => w.trainable || !trainableOnly)
    .map((w) => (w.toKeras ? w.toKeras(w.value) : w.value).clone()));
}

/** @internal Checks every value against its weight's Keras shape, then assigns them all (nothing changes on an error). */
export function assignWeights(weights: KerasWeight[], values: WeightValue[], who: string) {
  if (!Array.isArray(values)) throw new TypeError(`${who}: setWeights expects an array of Tensors or arrays, got ${typeof values}`);
  if (values.length !== weights.length) {
    throw new Error(`${who}: setWeights expects ${weights.length} weights (${weights.map((w) => `${w.name} ${fmt(kerasShape(w))}`).join(', ') || 'none'}) but got ${values.length}`);
  }
  const sources = weights.map((w, i) => {
    const want = kerasShape(w);
    const v = values[i];
    let t: Tensor;
    if (v instanceof Tensor) t = v;
    else if (Array.isArray(v) && Array.isArray(v[0])) t = tensor(v as NestedArray);
    else if (v && typeof (v as ArrayLike<number>).length === 'number') {
      const flat = v as ArrayLike<number>;
      if (flat.length !== sizeOf(want)) throw new ShapeError(`${who}: weight ${i} (${w.name}) has shape ${fmt(want)} (${sizeOf(want)} values) but got ${flat.length} values`);
      t = tensor(flat, want);
    } else throw new TypeError(`${who}: weight ${i} (${w.name}) must be a Tensor or an array, got ${typeof v}`);
    if (fmt(t.shape) !== fmt(want)) throw new ShapeError(`${who}: weight ${i} (${w.name}) has shape ${fmt(want)} but got ${fmt(t.shape)}`);
    return t;
  });
  noGrad(() => weights.forEach((w, i) => {
    let src = w.fromKeras ? w.fromKeras(sources[i]) : sources[i];
    if (src.dtype !== w.value.dtype) src = record('cast', [src], { dtype: w.value.dtype });
    runtime().enqueue(['assign', w.value.id, src.id]);
  }));
}

/** Keras's summary notation: (None, 28, 28, 1). */
export const fmtLayerShape = (s: LayerShape | null) => (s ? `(None${s.map((d) => `, ${d ?? 'None'}`).join('')})` : '?');
