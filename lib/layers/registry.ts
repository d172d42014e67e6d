// sn.layers factories and the class registry that modelFromJSON uses.

import { Activation, Dense, Dropout, Flatten, RepeatVector, Reshape } from './core.js';
import type { Layer } from './layer.js';
import { BatchNormalization, Embedding, LayerNormalization, Masking } from './wrapped.js';
import { GRULayer, LSTMLayer, SimpleRNN, type KerasRecurrent } from './recurrent.js';
import { AveragePooling2D, Conv1D, Conv2D, GlobalPooling, MaxPooling2D, UpSampling2D } from './convolutional.js';
import { Bidirectional, TimeDistributed } from './wrappers.js';
import { Merge } from './merge.js';
import { MultiHeadAttention } from './attention.js';
import type { LayerArgs } from './layer.js';

type Factory = (config: any) => Layer;

/** A wrapped layer's { className, config } as saved by toJSON. */
const inner = (c: { layer: { className: string; config: Record<string, unknown> } }) => layerFromConfig(c.layer.className, c.layer.config);

const FACTORIES: Record<string, Factory> = {
  Dense: (c) => new Dense(c),
  Activation: (c) => new Activation(c),
  Dropout: (c) => new Dropout(c),
  Flatten: (c) => new Flatten(c),
  Reshape: (c) => new Reshape(c),
  RepeatVector: (c) => new RepeatVector(c),
  Embedding: (c) => new Embedding(c),
  Masking: (c) => new Masking(c),
  LSTM: (c) => new LSTMLayer(c),
  GRU: (c) => new GRULayer(c),
  SimpleRNN: (c) => new SimpleRNN(c),
  LayerNormalization: (c) => new LayerNormalization(c),
  BatchNormalization: (c) => new BatchNormalization(c),
  Conv1D: (c) => new Conv1D(c),
  Conv2D: (c) => new Conv2D(c),
  MaxPooling2D: (c) => new MaxPooling2D(c),
  AveragePooling2D: (c) => new AveragePooling2D(c),
  GlobalAveragePooling1D: (c) => new GlobalPooling('GlobalAveragePooling1D', c),
  GlobalAveragePooling2D: (c) => new GlobalPooling('GlobalAveragePooling2D', c),
  GlobalMaxPooling1D: (c) => new GlobalPooling('GlobalMaxPooling1D', c),
  GlobalMaxPooling2D: (c) => new GlobalPooling('GlobalMaxPooling2D', c),
  UpSampling2D: (c) => new UpSampling2D(c),
  MultiHeadAttention: (c) => new MultiHeadAttention(c),
  TimeDistributed: (c) => new TimeDistributed({ ...c, layer: inner(c) }),
  Bidirectional: (c) => new Bidirectional({ ...c, layer: inner(c) as KerasRecurrent }),
  ...Object.fromEntries((['Concatenate', 'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum'] as const).map((k) => [k, (c: LayerArgs) => new Merge(k, c)])),
};

export function layerFromConfig(className: string, config: Record<string, unknown>): Layer {
  const make = Object.hasOwn(FACTORIES, className) ? FACTORIES[className] : undefined;
  if (!make) throw new Error(`unknown layer class '${className}'; known: ${Object.keys(FACTORIES).join(', ')}`);
  return make(config);
}
