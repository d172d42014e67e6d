// Keras's Sequential model, and the public face of the model modules: the container (layers,
// weights, summary, JSON) is in model/container.ts, training (compile, fit, evaluate, predict)
// in model/training.ts, save and loadModel in model/saving.ts.

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

  constructor(layers: Layer[] = [], modelName = 'sequential') {
    super(modelName);
    for (const l of layers) this.add(l);
  }

  add(layer: Layer) {
    if (!(layer instanceof Layer)) throw new TypeError('add: expected a layer from sn.layers');
    if (this.layers.length === 0 && !layer.inputShape) {
      throw new Error(`the first layer ('${layer.name}') needs an inputShape, e.g. sn.layers.dense({ units: 10, inputShape: [784] })`);
    }
    if (this.compiled) throw new Error('add: layers cannot be added after compile()');
    if ((layer.getConfig() as { returnState?: boolean }).returnState) {
      throw new Error(`add: '${layer.name}' has returnState, so it has several outputs; a sequential model passes one on. Use the functional API: sn.model({ inputs, outputs })`);
    }
    // Weights exist as soon as the layer is added, so parameters() is complete before compile().
    layer.build(this.layers.length ? this.layers[this.layers.length - 1].outputShape! : layer.inputShape!);
    this.layers.push(layer);
  }

  allLayers() { return this.layers; }

  get inputShapes(): LayerShape[] {
    if (!this.layers.length) throw new Error('the model has no layers');
    return [this.layers[0].inputShape!];
  }

  get outputShapes(): LayerShape[] {
    if (!this.layers.length) throw new Error('the model has no layers');
    return [this.layers[this.layers.length - 1].outputShape!];
  }

  protected outputNames() { return [this.layers[this.layers.length - 1].name]; }
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
    return this.table(this.layers.map((layer) => ({ layer, shape: fmtLayerShape(layer.outputShape) })));
  }

  toJSON() {
    return {
      className: 'Sequential',
      config: { name: this.modelName, layers: this.layers.map((l) => ({ className: l.className, config: { ...l.getConfig(), name: l.name } })) },
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
  return new SequentialModel(layers.map((l, i) => {
    if (typeof l?.className !== 'string' || !l.config || typeof l.config !== 'object') {
      throw new TypeError(`modelFromJSON: layer ${i} must be { className: string, config: object }, got ${check.describe(l)}`);
    }
    return layerFromConfig(l.className, l.config);
  }), config.name as string | undefined);
});
