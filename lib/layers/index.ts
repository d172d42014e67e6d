// sn.layers: Keras-style layer factories.

import { Activation, Dense, Dropout, Flatten, Reshape, type DenseArgs } from './core.js';
import type { LayerArgs } from './layer.js';
import type { ActivationName } from './core.js';

export const dense = (args: DenseArgs) => new Dense(args);
export const activation = (args: LayerArgs & { activation: ActivationName }) => new Activation(args);
export const dropout = (args: LayerArgs & { rate: number }) => new Dropout(args);
export const flatten = (args: LayerArgs = {}) => new Flatten(args);
export const reshape = (args: LayerArgs & { targetShape: number[] }) => new Reshape(args);
export { Layer } from './layer.js';
export type { LayerArgs, LayerShape } from './layer.js';
