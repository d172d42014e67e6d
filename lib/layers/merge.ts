// Keras merge layers: concatenate, add, subtract, multiply, average,
// maximum, minimum. They take several inputs, so they live in functional
// models: sn.layers.concatenate().apply([a, b]).

import { cat, type Tensor } from '../tensor.js';
import { Layer, type LayerArgs, type LayerShape } from './layer.js';

const fmtShape = (s: LayerShape) => `[batch, ${s.map((d) => d ?? 'null').join(', ')}]`;

export type MergeKind = 'Concatenate' | 'Add' | 'Subtract' | 'Multiply' | 'Average' | 'Maximum' | 'Minimum';

const ELEMENTWISE: Record<Exclude<MergeKind, 'Concatenate'>, (xs: Tensor[]) => Tensor> = {
  Add: (xs) => xs.reduce((a, b) => a.add(b)),
  Subtract: ([a, b]) => a.sub(b),
  Multiply: (xs) => xs.reduce((a, b) => a.mul(b)),
  Average: (xs) => xs.reduce((a, b) => a.add(b)).div(xs.length),
  Maximum: (xs) => xs.reduce((a, b) => a.maximum(b)),
  Minimum: (xs) => xs.reduce((a, b) => a.minimum(b)),
};

export class Merge extends Layer {
  constructor(className: MergeKind, readonly args: LayerArgs & { axis?: number } = {}) {
    super(className, args);
  }

  /** The concatenation axis among the non-batch dims. */
  private axisFor(rank: number) {
    const axis = this.args.axis ?? -1;
    const a = axis < 0 ? rank + axis : axis - 1;
    if (axis === 0 || a < 0 || a >= rank) throw new Error(`concatenate: axis ${axis} is out of range for inputs of rank ${rank + 1}`);
    return a;
  }

  override buildFor(shapes: LayerShape[]): LayerShape[] {
    if (shapes.length < 2 || (this.className === 'Subtract' && shapes.length !== 2)) {
      throw new Error(`layer '${this.name}' (${this.className}) takes ${this.className === 'Subtract' ? 'exactly 2' : 'at least 2'} inputs, got ${shapes.length}`);
    }
    const out = this.mergedShape(shapes);
    this.outputShape = out;
    return [out];
  }

  private mergedShape(shapes: LayerShape[]): LayerShape {
    const [first] = shapes;
    const bad = () => { throw new Error(`layer '${this.name}' (${this.className}) cannot merge shapes ${shapes.map(fmtShape).join(' and ')}`); };
    if (shapes.some((s) => s.length !== first.length)) bad();
    if (this.className !== 'Concatenate') {
      if (shapes.some((s) => s.some((d, i) => d !== null && first[i] !== null && d !== first[i]))) bad();
      return first;
    }
    const a = this.axisFor(first.length);
    if (shapes.some((s) => s.some((d, i) => i !== a && d !== null && first[i] !== null && d !== first[i]))) bad();
    const total = shapes.some((s) => s[a] === null) ? null : shapes.reduce((n, s) => n + (s[a] as number), 0);
    return first.map((d, i) => (i === a ? total : d));
  }

  computeOutputShape(s: LayerShape): LayerShape {
    return s;
  }

  call(): Tensor {
    throw new Error(`layer '${this.name}' (${this.className}) merges several inputs: use it in a functional model, e.g. sn.layers.${this.className.toLowerCase()}().apply([a, b])`);
  }

  override invoke(xs: Tensor[]) {
    const out = this.className === 'Concatenate' ? cat(xs, this.axisFor(xs[0].ndim - 1) + 1) : ELEMENTWISE[this.className as Exclude<MergeKind, 'Concatenate'>](xs);
    return { outputs: [out], mask: null };
  }

  getConfig() { return { ...this.args }; }
}
