// Keras's Sequential model, and the public face of the model modules: the container (layers,
// weights, summary, JSON) is in model/container.ts, training (compile, fit, evaluate, predict)
// in model/training.ts, save and loadModel in model/saving.ts.

import { ShapeError } from './shape.js';
import type { Tensor } from './tensor.js';
import * as check from './validate.js';
import { Dense } from './layers/core.js';
import { Layer, fmtLayerShape, type LayerShape } from './layers/layer.js';
import type { Prediction } from './layers/losses.js';
import { layerFromConfig } from './layers/registry.js';
import { registerModelClass } from './model/container.js';
import { LayersModel, type DataList } from './model/training.js';

export { modelFromJSON, registerModelClass } from './model/container.js';
export { LayersModel, type Data, type DataList, type Logs, type Callback, type FitOptions, type History, type CompileArgs } from './model/training.js';
export { loadModel } from './model/saving.js';

export class SequentialModel extends LayersModel {
  layers: Layer[] = [];
  /** The input shape (no batch dim) the layers are built for: the first layer's inputShape, else set by build(). */
  private builtInputShape: LayerShape | null = null;

  constructor(layers: Layer[] = [], modelName = 'sequential') {
    super(modelName);
    for (const l of layers) this.add(l);
  }

  add(layer: Layer) {
    if (!(layer instanceof Layer)) throw new TypeError('add: expected a layer from sn.layers');
    if (this.isCompiled) throw new Error('add: layers cannot be added after compile()');
    if ((layer.getConfig() as { returnState?: boolean }).returnState) {
      throw new Error(`add: '${layer.name}' has returnState, so it has several outputs; a sequential model passes one on. Use the functional API: sn.model({ inputs, outputs })`);
    }
    // In a built model weights exist as soon as the layer is added, so parameters() is complete
    // before compile(). Without the first layer's inputShape, every layer waits for the model's build.
    const previous = this.layers.at(-1);
    const inputShape = previous ? (this.built ? previous.outputShape : null) : layer.inputShape;
    if (inputShape) layer.build(inputShape);
    if (!previous && layer.inputShape) this.builtInputShape = [...layer.inputShape];
    this.layers.push(layer);
  }

  override get built() {
    return this.builtInputShape !== null;
  }

  /**
   * Builds the layers for inputs of this shape, batch dimension first as in Keras
   * (`model.build([null, 784])`). Without it, a model whose first layer has no inputShape is built
   * from the data of its first fit, evaluate, predict or forward.
   */
  build(inputShape: LayerShape) {
    if (!Array.isArray(inputShape) || inputShape.length < 2 || inputShape.some((d) => d !== null && !(Number.isInteger(d) && d > 0))) {
      throw new Error(`build: expected [batch, ...inputShape] of positive integers or null (the batch, or a length known only at run time), e.g. [null, 784]; got ${JSON.stringify(inputShape)}`);
    }
    const shape = inputShape.slice(1);
    const batchShape = (s: LayerShape) => `[batch, ${s.map((d) => d ?? 'null').join(', ')}]`;
    if (this.builtInputShape) {
      if (batchShape(shape) !== batchShape(this.builtInputShape)) throw new ShapeError(`build: the model is built for inputs of shape ${batchShape(this.builtInputShape)} but got ${batchShape(shape)}`);
      return;
    }
    if (!this.layers.length) throw new Error('the model has no layers: add some before building it');
    let s = shape;
    for (const layer of this.layers) s = layer.build(s);
    this.builtInputShape = shape;
  }

  protected override buildOnFirstCall([x]: Tensor[]) {
    if (this.built) return;
    this.build([null, ...x.shape.slice(1)]);
    this.inferredInputShape = true;
  }

  protected override inputCount() { return 1; }

  allLayers() { return this.layers; }

  get inputShapes(): LayerShape[] {
    if (!this.layers.length) throw new Error('the model has no layers');
    this.requireBuilt('inputShape');
    return [this.builtInputShape!];
  }

  get outputShapes(): LayerShape[] {
    if (!this.layers.length) throw new Error('the model has no layers');
    this.requireBuilt('outputShape');
    return [this.layers[this.layers.length - 1].outputShape!];
  }

  protected outputNames() {
    if (!this.layers.length) throw new Error('the model has no layers');
    return [this.layers[this.layers.length - 1].name];
  }

  protected inputLayerName() { return this.layers[0].name; }

  /** Runs the layers, passing masks along; keeps the last dense layer's logits for the losses. */
  protected runAll([x]: Tensor[], training: boolean): Prediction[] {
    let h = x;
    let mask: Tensor | null = null;
    const last = this.layers[this.layers.length - 1];
    for (const layer of this.layers) {
      if (layer === last && last instanceof Dense) {
        const logits = last.logits(h);
        return [{ pred: last.activation(logits), logits, activation: last.activationName }];
      }
      const next = layer.call(h, { training, mask });
      mask = layer.computeMask(h, mask);
      h = next;
    }
    return [{ pred: h, logits: null, activation: 'linear' }];
  }

  override forward(x: Tensor): Tensor {
    return super.forward(x) as Tensor;
  }

  override predict(xd: DataList, opts: { batchSize?: number } = {}): Tensor {
    return super.predict(xd, opts) as Tensor;
  }

  override predictOnBatch(xd: DataList): Tensor {
    return super.predictOnBatch(xd) as Tensor;
  }

  summary(): string {
    this.requireBuilt('summary');
    return this.table(this.layers.map((layer) => ({ layer, shape: fmtLayerShape(layer.outputShape) })));
  }

  toJSON() {
    return {
      className: 'Sequential',
      config: {
        name: this.modelName,
        layers: this.layers.map((l) => ({ className: l.className, config: { ...l.getConfig(), name: l.name } })),
        // Keras's build_input_shape: a model built at its first call is rebuilt as it was (loadModel needs its weights' shapes).
        ...(this.built && !this.layers[0].inputShape ? { buildInputShape: [null, ...this.builtInputShape!] } : {}),
      },
    };
  }
}

/** sn.sequential([layers], { name }) or TF.js's sn.sequential({ layers, name }). */
export function sequential(layers: Layer[] | { layers?: Layer[]; name?: string } = [], { name }: { name?: string } = {}) {
  if (Array.isArray(layers)) return new SequentialModel(layers, name);
  if (layers && typeof layers === 'object' && !(layers instanceof Layer)) return new SequentialModel(layers.layers ?? [], layers.name ?? name);
  throw new TypeError('sequential: expected an array of layers or { layers: [...] }');
}

registerModelClass('Sequential', (config) => {
  const layers: unknown = config.layers;
  if (!Array.isArray(layers)) throw new TypeError(`modelFromJSON: config.layers must be a list of layer specs, got ${check.describe(layers)}`);
  const model = new SequentialModel(layers.map((l, i) => {
    if (typeof l?.className !== 'string' || !l.config || typeof l.config !== 'object') {
      throw new TypeError(`modelFromJSON: layer ${i} must be { className: string, config: object }, got ${check.describe(l)}`);
    }
    return layerFromConfig(l.className, l.config);
  }), config.name as string | undefined);
  if (config.buildInputShape !== undefined) model.build(config.buildInputShape as LayerShape);
  return model;
});
