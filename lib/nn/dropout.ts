// Dropout: random zeroing in training mode, identity in eval mode.

import type { Tensor } from '../tensor.js';
import { dropout } from './functional.js';
import { Module } from './module.js';
import { pyFloat } from './repr.js';
import { pyArgs, type PyRest } from './args.js';

export class Dropout extends Module {
  readonly p: number;
  /** Accepted for PyTorch code; the result is the same values either way. */
  readonly inplace: boolean;

  constructor(...rest: PyRest<[p: number, inplace: boolean], { p?: number; inplace?: boolean }>) {
    super();
    const { p = 0.5, inplace = false } = pyArgs<{ p?: number; inplace?: boolean }>('Dropout', rest, { p: 'number', inplace: 'boolean' });
    this.p = p;
    this.inplace = inplace;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }

  /** Masks come from the seeded stream (sn.manualSeed), so runs repeat exactly. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training });
  }

  override extraRepr() {
    return `p=${pyFloat(this.p)}, inplace=${this.inplace ? 'True' : 'False'}`;
  }
}
