// sn.layers: Keras-style layer factories.

import { Activation, Dense, Dropout, Flatten, RepeatVector, Reshape, type DenseArgs } from './core.js';
import type { LayerArgs } from './layer.js';
import type { ActivationName } from './core.js';
import { BatchNormalization, Embedding, LayerNormalization, Masking, type EmbeddingArgs } from './wrapped.js';
import { GRULayer, LSTMLayer, SimpleRNN, type KerasRecurrent, type RecurrentArgs } from './recurrent.js';
import {
  AveragePooling2D, Conv1D, Conv2D, GlobalPooling, MaxPooling2D, UpSampling2D, type Conv1dArgs, type Conv2dArgs, type Pooling2dArgs,
} from './convolutional.js';
import { Bidirectional, TimeDistributed, type MergeMode } from './wrappers.js';
import type { Pair } from '../nn/args.js';
import { Merge } from './merge.js';
import { MultiHeadAttention, type MultiHeadAttentionArgs } from './attention.js';

export const dense = (args: DenseArgs) => new Dense(args);
export const activation = (args: LayerArgs & { activation: ActivationName }) => new Activation(args);
export const dropout = (args: LayerArgs & { rate: number }) => new Dropout(args);
export const flatten = (args: LayerArgs = {}) => new Flatten(args);
export const reshape = (args: LayerArgs & { targetShape: number[] }) => new Reshape(args);
export const repeatVector = (args: LayerArgs & { n: number }) => new RepeatVector(args);
export const embedding = (args: EmbeddingArgs) => new Embedding(args);
export const masking = (args: LayerArgs & { maskValue?: number } = {}) => new Masking(args);
export const lstm = (args: RecurrentArgs) => new LSTMLayer(args);
export const gru = (args: RecurrentArgs) => new GRULayer(args);
export const simpleRNN = (args: RecurrentArgs) => new SimpleRNN(args);
export const layerNormalization = (args: LayerArgs & { epsilon?: number } = {}) => new LayerNormalization(args);
export const batchNormalization = (args: LayerArgs & { momentum?: number; epsilon?: number } = {}) => new BatchNormalization(args);
export const conv1d = (args: Conv1dArgs) => new Conv1D(args);
export const conv2d = (args: Conv2dArgs) => new Conv2D(args);
export const maxPooling2d = (args: Pooling2dArgs = {}) => new MaxPooling2D(args);
export const averagePooling2d = (args: Pooling2dArgs = {}) => new AveragePooling2D(args);
export const globalAveragePooling1d = (args: LayerArgs = {}) => new GlobalPooling('GlobalAveragePooling1D', args);
export const globalAveragePooling2d = (args: LayerArgs = {}) => new GlobalPooling('GlobalAveragePooling2D', args);
export const globalMaxPooling1d = (args: LayerArgs = {}) => new GlobalPooling('GlobalMaxPooling1D', args);
export const globalMaxPooling2d = (args: LayerArgs = {}) => new GlobalPooling('GlobalMaxPooling2D', args);
export const upSampling2d = (args: LayerArgs & { size?: Pair; interpolation?: 'nearest' } = {}) => new UpSampling2D(args);
export const timeDistributed = (args: LayerArgs & { layer: import('./layer.js').Layer }) => new TimeDistributed(args);
export const bidirectional = (args: LayerArgs & { layer: KerasRecurrent; mergeMode?: MergeMode }) => new Bidirectional(args);
export const concatenate = (args: LayerArgs & { axis?: number } = {}) => new Merge('Concatenate', args);
export const add = (args: LayerArgs = {}) => new Merge('Add', args);
export const subtract = (args: LayerArgs = {}) => new Merge('Subtract', args);
export const multiply = (args: LayerArgs = {}) => new Merge('Multiply', args);
export const average = (args: LayerArgs = {}) => new Merge('Average', args);
export const maximum = (args: LayerArgs = {}) => new Merge('Maximum', args);
export const minimum = (args: LayerArgs = {}) => new Merge('Minimum', args);
export const multiHeadAttention = (args: MultiHeadAttentionArgs) => new MultiHeadAttention(args);
export { Layer, SymbolicTensor } from './layer.js';
export type { LayerArgs, LayerShape } from './layer.js';
