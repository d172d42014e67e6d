// sn.layers factories and the class registry that modelFromJSON uses.

import { Activation, Dense, Dropout, Flatten, Reshape } from './core.js';
import type { Layer } from './layer.js';

type Factory = (config: any) => Layer;

const FACTORIES: Record<string, Factory> = {
  Dense: (c) => new Dense(c),
  Activation: (c) => new Activation(c),
  Dropout: (c) => new Dropout(c),
  Flatten: (c) => new Flatten(c),
  Reshape: (c) => new Reshape(c),
};

/** Adds layer classes defined elsewhere (recurrent, convolutional, ...). */
export function registerLayer(className: string, factory: Factory) {
  FACTORIES[className] = factory;
}

export function layerFromConfig(className: string, config: Record<string, unknown>): Layer {
  const make = FACTORIES[className];
  if (!make) throw new Error(`unknown layer class '${className}'; known: ${Object.keys(FACTORIES).join(', ')}`);
  return make(config);
}
