// What every Keras model is before it trains: its layers, the shapes they take and give, the
// weights in Keras's layout, summary(), and the JSON that rebuilds the architecture. Training
// (compile, fit) builds on this in training.ts, saving in saving.ts.

import { fmt, ShapeError } from '../shape.js';
import type { Tensor } from '../tensor.js';
import * as check from '../validate.js';
import { Module } from '../nn/module.js';
import { assignWeights, readWeights, type Layer, type LayerShape, type WeightValue } from '../layers/layer.js';
import type { Prediction } from '../layers/losses.js';
import type { LayersModel } from './training.js';

/** The layers and weights of a Sequential or functional model; LayersModel adds training and saving. */
export abstract class Container extends Module {
  constructor(readonly modelName: string) {
    super();
  }

  /** Every layer, in the order summary() and getWeights() list them. */
  abstract allLayers(): Layer[];
  /** Shapes (no batch dim) of the inputs and of the outputs. */
  abstract get inputShapes(): LayerShape[];
  abstract get outputShapes(): LayerShape[];
  /** Names that prefix per-output logs when there are several outputs. */
  protected abstract outputNames(): string[];
  /** The layer that takes input i (named in shape errors). */
  protected abstract inputLayerName(i: number): string;
  /** Runs the model on one tensor per input; one prediction per output. */
  protected abstract runAll(xs: Tensor[], training: boolean): Prediction[];
  abstract toJSON(): { className: string; config: Record<string, unknown> };

  get inputShape(): LayerShape {
    return this.inputShapes[0];
  }

  get outputShape(): LayerShape {
    return this.outputShapes[0];
  }

  /** Every layer's weights in Keras's layout: trainable ones layer by layer, then the non-trainable ones (TF.js's order). */
  private kerasWeights() {
    const all = this.allLayers().flatMap((l) => l.kerasWeights());
    return [...all.filter((w) => w.trainable), ...all.filter((w) => !w.trainable)];
  }

  getWeights(trainableOnly = false): Tensor[] {
    return readWeights(this.kerasWeights(), trainableOnly);
  }

  setWeights(values: WeightValue[]) {
    assignWeights(this.kerasWeights(), values, `model '${this.modelName}'`);
  }

  forward(...xs: Tensor[]): Tensor | Tensor[] {
    const preds = this.runChecked(xs, this.training).map((p) => p.pred);
    return preds.length === 1 ? preds[0] : preds;
  }

  protected runChecked(xs: Tensor[], training: boolean) {
    xs.forEach((x, i) => this.checkInput(x, i));
    return this.runAll(xs, training);
  }

  protected checkInput(x: Tensor, i: number) {
    const want = this.inputShapes[i];
    const got = x.shape.slice(1);
    const what = this.inputShapes.length > 1 ? `x[${i}]` : 'x';
    if (got.length !== want.length || want.some((d, k) => d !== null && d !== got[k])) {
      throw new ShapeError(`layer '${this.inputLayerName(i)}' expects ${what} of shape [batch, ${want.map((d) => d ?? 'null').join(', ')}] but got ${fmt(x.shape)}`);
    }
  }

  /** Keras's summary table; `connectedTo` adds Keras's "Connected to" column (functional models). */
  protected table(rows: { layer: Layer; shape: string; connectedTo?: string }[]): string {
    const withLinks = rows.some((r) => r.connectedTo !== undefined);
    const widths = withLinks ? [33, 26, 10, 30] : [33, 26, 10];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('').trimEnd();
    const total = this.allLayers().reduce((s, l) => s + l.countParams(), 0);
    const width = widths.reduce((a, b) => a + b, 0);
    const bar = '_'.repeat(width);
    const cells = rows.map((r) => [`${r.layer.name} (${r.layer.className})`, r.shape, String(r.layer.countParams()), ...(withLinks ? [r.connectedTo ?? ''] : [])]);
    return [
      `Model: "${this.modelName}"`, bar,
      line(['Layer (type)', 'Output Shape', 'Param #', ...(withLinks ? ['Connected to'] : [])]),
      '='.repeat(width),
      ...cells.flatMap((r, i) => [line(r), i < cells.length - 1 ? bar : '='.repeat(width)]),
      `Total params: ${total}`, `Trainable params: ${total}`, 'Non-trainable params: 0', bar,
    ].join('\n');
  }

  abstract summary(): string;

  override toString() {
    return this.summary();
  }
}

/** Model classes modelFromJSON rebuilds, by className (Sequential and functional models register themselves). */
const MODEL_CLASSES: Record<string, (config: Record<string, unknown>) => LayersModel> = {};

/** @internal */
export function registerModelClass(className: string, fromConfig: (config: Record<string, unknown>) => LayersModel) {
  MODEL_CLASSES[className] = fromConfig;
}

/** Rebuilds an architecture from model.toJSON() (fresh weights). */
export function modelFromJSON(json: ReturnType<LayersModel['toJSON']> | string): LayersModel {
  const spec = typeof json === 'string' ? JSON.parse(json) : json;
  if (typeof spec?.className !== 'string' || !Object.hasOwn(MODEL_CLASSES, spec.className)) {
    throw new Error(`modelFromJSON: expected className ${Object.keys(MODEL_CLASSES).map((k) => `'${k}'`).join(' or ')}, got '${spec?.className}'`);
  }
  if (!spec.config || typeof spec.config !== 'object') throw new TypeError(`modelFromJSON: config must be an object, got ${check.describe(spec.config)}`);
  return MODEL_CLASSES[spec.className](spec.config);
}
