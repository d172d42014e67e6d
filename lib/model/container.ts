// What every Keras model is before it trains: its layers, the shapes they take and give, the
// weights in Keras's layout, summary(), and the JSON that rebuilds the architecture. Training
// (compile, fit) builds on this in training.ts, saving in saving.ts.

import { fmt, ShapeError } from '../shape.js';
import type { Tensor } from '../tensor.js';
import * as check from '../validate.js';
import { Module, type Buffer, type Parameter, type StateDict } from '../nn/module.js';
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

  /**
   * Whether the layers have their weights. A Sequential model whose first layer has no inputShape
   * is built by its first call (fit, evaluate, predict, forward) or by model.build().
   */
  get built(): boolean {
    return true;
  }

  /** Builds the model for the data of its first call; a model that knows its input shapes has nothing to do. */
  protected buildOnFirstCall(_xs: Tensor[]) {}

  /** Whether the input shape came from the data of the first call (said in shape errors). */
  protected inferredInputShape = false;

  /** How many inputs the model takes (known before it is built). */
  protected inputCount(): number {
    return this.inputShapes.length;
  }

  /** Throws, saying how to build, unless the model is built. */
  protected requireBuilt(what: string) {
    if (!this.built) throw new Error(`${what}: the model is not built yet: call it on data or give the first layer an inputShape (or call model.build([null, ...inputShape]))`);
  }

  get inputShape(): LayerShape {
    return this.inputShapes[0];
  }

  get outputShape(): LayerShape {
    return this.outputShapes[0];
  }

  /** Every layer's weights in Keras's layout: trainable ones layer by layer, then the non-trainable ones (TF.js's order). */
  private kerasWeights(what: string) {
    this.requireBuilt(what);
    const all = this.allLayers().flatMap((l) => l.kerasWeights());
    return [...all.filter((w) => w.trainable), ...all.filter((w) => !w.trainable)];
  }

  getWeights(trainableOnly = false): Tensor[] {
    return readWeights(this.kerasWeights('getWeights'), trainableOnly);
  }

  setWeights(values: WeightValue[]) {
    assignWeights(this.kerasWeights('setWeights'), values, `model '${this.modelName}'`);
  }

  /** The number of weights to train (TF.js's countParams). */
  countParams(): number {
    this.requireBuilt('countParams');
    return this.allLayers().reduce((s, l) => s + l.countParams(), 0);
  }

  // Before the build there are no weights: saying so beats an empty list an optimizer or a save would take.
  override namedParameters(prefix = ''): [string, Parameter][] {
    this.requireBuilt('parameters');
    return super.namedParameters(prefix);
  }

  override namedBuffers(prefix = ''): [string, Buffer][] {
    this.requireBuilt('buffers');
    return super.namedBuffers(prefix);
  }

  override stateDict(): StateDict {
    this.requireBuilt('stateDict');
    return super.stateDict();
  }

  forward(...xs: Tensor[]): Tensor | Tensor[] {
    const preds = this.runChecked(xs, this.training).map((p) => p.pred);
    return preds.length === 1 ? preds[0] : preds;
  }

  protected runChecked(xs: Tensor[], training: boolean) {
    this.buildOnFirstCall(xs);
    xs.forEach((x, i) => this.checkInput(x, i));
    return this.runAll(xs, training);
  }

  protected checkInput(x: Tensor, i: number) {
    const want = this.inputShapes[i];
    const got = x.shape.slice(1);
    const what = this.inputShapes.length > 1 ? `x[${i}]` : 'x';
    if (got.length !== want.length || want.some((d, k) => d !== null && d !== got[k])) {
      throw new ShapeError(`layer '${this.inputLayerName(i)}' expects ${what} of shape [batch, ${want.map((d) => d ?? 'null').join(', ')}] but got ${fmt(x.shape)}${this.inferredInputShape ? '; the model took its input shape from the first data it was called on' : ''}`);
    }
  }

  /** Keras's summary table; `connectedTo` adds Keras's "Connected to" column (functional models). */
  protected table(rows: { layer: Layer; shape: string; connectedTo?: string }[]): string {
    const withLinks = rows.some((r) => r.connectedTo !== undefined);
    const widths = withLinks ? [33, 26, 10, 30] : [33, 26, 10];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('').trimEnd();
    const total = this.countParams();
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

  /** The summary; before the build (which summary() refuses) the layers' names, so printing a model never throws. */
  override toString() {
    if (this.built) return this.summary();
    return `Model: "${this.modelName}" (not built yet): ${this.allLayers().map((l) => `${l.name} (${l.className})`).join(', ')}`;
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
