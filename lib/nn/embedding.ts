// Embedding: a lookup table of trainable rows.

import { arange, where, type Tensor } from '../tensor.js';
import { embedding } from './functional.js';
import { normal } from './init.js';
import { Module, Parameter } from './module.js';
import { integer } from '../validate.js';
import { pyArgs, type PyRest } from './args.js';

export interface EmbeddingOptions {
  paddingIdx?: number | null;
  /** Only null (renormalizing rows is not supported). */
  maxNorm?: number | null;
  normType?: number;
  /** Only false. */
  scaleGradByFreq?: boolean;
  /** Only false. */
  sparse?: boolean;
}

export class Embedding extends Module {
  weight: Parameter;
  /** Normalized to 0..numEmbeddings-1; undefined when unset. */
  readonly paddingIdx: number | undefined;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number,
    ...rest: PyRest<[paddingIdx: number | null, maxNorm: number | null, normType: number, scaleGradByFreq: boolean, sparse: boolean], EmbeddingOptions>) {
    super();
    integer(numEmbeddings, 'Embedding: numEmbeddings', 0);
    integer(embeddingDim, 'Embedding: embeddingDim', 0);
    const { paddingIdx: pi, maxNorm = null, scaleGradByFreq = false, sparse = false } = pyArgs<EmbeddingOptions>('Embedding', rest,
      { paddingIdx: 'int?', maxNorm: 'number?', normType: 'number', scaleGradByFreq: 'boolean', sparse: 'boolean' });
    if (maxNorm !== null) throw new RangeError('Embedding: maxNorm is not supported');
    if (scaleGradByFreq || sparse) throw new RangeError(`Embedding: ${scaleGradByFreq ? 'scaleGradByFreq' : 'sparse'} is not supported`);
    const paddingIdx = pi ?? undefined;
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
