// sn.layers: Keras-style layer factories.

import { Activation, Dense, Dropout, Flatten, Reshape, type DenseArgs } from './core.js';
import type { LayerArgs } from './layer.js';
import type { ActivationName } from './core.js';
import {
  BatchNormalization, Conv2D, Embedding, LayerNormalization, Masking, MaxPooling2D,
  type Conv2dArgs, type EmbeddingArgs,
} from './wrapped.js';
import { GRULayer, LSTMLayer, SimpleRNN, type RecurrentArgs } from './recurrent.js';

export const dense = (args: DenseArgs) => new Dense(args);
export const activation = (args: LayerArgs & { activation: ActivationName }) => new Activation(args);
export const dropout = (args: LayerArgs & { rate: number }) => new Dropout(args);
export const flatten = (args: LayerArgs = {}) => new Flatten(args);
export const reshape = (args: LayerArgs & { targetShape: number[] }) => new Reshape(args);
export const embedding = (args: EmbeddingArgs) => new Embedding(args);
export const masking = (args: LayerArgs & { maskValue?: number } = {}) => new Masking(args);
export const lstm = (args: RecurrentArgs) => new LSTMLayer(args);
export const gru = (args: RecurrentArgs) => new GRULayer(args);
export const simpleRNN = (args: RecurrentArgs) => new SimpleRNN(args);
export const layerNormalization = (args: LayerArgs & { epsilon?: number } = {}) => new LayerNormalization(args);
export const batchNormalization = (args: LayerArgs & { momentum?: number; epsilon?: number } = {}) => new BatchNormalization(args);
export const conv2d = (args: Conv2dArgs) => new Conv2D(args);
export const maxPooling2d = (args: LayerArgs & { poolSize?: number | [number, number]; strides?: number | [number, number] } = {}) => new MaxPooling2D(args);
export { Layer } from './layer.js';
export type { LayerArgs, LayerShape } from './layer.js';
