// sn.layers factories and the class registry that modelFromJSON uses.

import { Activation, Dense, Dropout, Flatten, Reshape } from './core.js';
import type { Layer } from './layer.js';
import { BatchNormalization, Conv2D, Embedding, LayerNormalization, Masking, MaxPooling2D } from './wrapped.js';
import { GRULayer, LSTMLayer, SimpleRNN } from './recurrent.js';

type Factory = (config: any) => Layer;

const FACTORIES: Record<string, Factory> = {
  Dense: (c) => new Dense(c),
  Activation: (c) => new Activation(c),
  Dropout: (c) => new Dropout(c),
  Flatten: (c) => new Flatten(c),
  Reshape: (c) => new Reshape(c),
  Embedding: (c) => new Embedding(c),
  Masking: (c) => new Masking(c),
  LSTM: (c) => new LSTMLayer(c),
  GRU: (c) => new GRULayer(c),
  SimpleRNN: (c) => new SimpleRNN(c),
  LayerNormalization: (c) => new LayerNormalization(c),
  BatchNormalization: (c) => new BatchNormalization(c),
  Conv2D: (c) => new Conv2D(c),
  MaxPooling2D: (c) => new MaxPooling2D(c),
};

export function layerFromConfig(className: string, config: Record<string, unknown>): Layer {
  const make = Object.hasOwn(FACTORIES, className) ? FACTORIES[className] : undefined;
  if (!make) throw new Error(`unknown layer class '${className}'; known: ${Object.keys(FACTORIES).join(', ')}`);
  return make(config);
}
