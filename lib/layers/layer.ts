// Keras-style layers: built from the same engine ops and nn modules as the
// PyTorch-style API (one engine, two front doors). A layer knows its config
// (for toJSON), builds its weights once the input shape is known, and maps a
// batch (plus an optional mask) to a batch.

import { Module } from '../nn/module.js';
import { ShapeError } from '../shape.js';
import type { Tensor } from '../tensor.js';

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

  forward(x: Tensor): Tensor {
    return this.call(x, { training: this.training, mask: null });
  }

  countParams(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** @internal Throws a ShapeError naming this layer, what it expected and the shape it got. */
  shapeError(expected: string, got: LayerShape): never {
    throw new ShapeError(`layer '${this.name}' expected input ${expected} but got shape [batch, ${got.map((d) => d ?? 'null').join(', ')}]`);
  }
}

/** Keras's summary notation: (None, 28, 28, 1). */
export const fmtLayerShape = (s: LayerShape | null) => (s ? `(None${s.map((d) => `, ${d ?? 'None'}`).join('')})` : '?');
