// Dropout: random zeroing in training mode, identity in eval mode.

import type { Tensor } from '../tensor.js';
import { dropout } from './functional.js';
import { Module } from './module.js';
import { pyFloat } from './repr.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }

  /** Masks come from the seeded stream (sn.manualSeed), so runs repeat exactly. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training });
  }

  override extraRepr() {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}
