// Embedding: a lookup table of trainable rows.

import { arange, where, type Tensor } from '../tensor.js';
import { embedding } from './functional.js';
import { normal } from './init.js';
import { Module, Parameter } from './module.js';
import { integer } from '../validate.js';

export class Embedding extends Module {
  weight: Parameter;
  /** Normalized to 0..numEmbeddings-1; undefined when unset. */
  readonly paddingIdx: number | undefined;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, { paddingIdx }: { paddingIdx?: number } = {}) {
    super();
    integer(numEmbeddings, 'Embedding: numEmbeddings', 0);
    integer(embeddingDim, 'Embedding: embeddingDim', 0);
    if (paddingIdx !== undefined && (!Number.isInteger(paddingIdx) || paddingIdx < -numEmbeddings || paddingIdx >= numEmbeddings)) {
      throw new RangeError(`Embedding: paddingIdx must be an integer in [-${numEmbeddings}, ${numEmbeddings}), got ${paddingIdx}`);
    }
    this.paddingIdx = paddingIdx !== undefined && paddingIdx < 0 ? paddingIdx + numEmbeddings : paddingIdx;
    const pad = this.paddingIdx;
    // N(0, 1) like PyTorch, with the padding row zeroed.
    const init = normal([numEmbeddings, embeddingDim]);
    this.weight = new Parameter(pad === undefined ? init : where(arange(numEmbeddings).ne(pad).unsqueeze(1), init, 0));
  }

  /** int32 indices of any shape -> [..., embeddingDim]. */
  forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
  }

  override extraRepr() {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx === undefined ? '' : `, padding_idx=${this.paddingIdx}`}`;
  }
}
