// Datasets: anything with a length and get(i). TensorDataset also builds
// whole batches in the worker (row slices, or a gather by an index tensor),
// which the DataLoader uses instead of stacking rows one by one.

import { fmt, ShapeError } from '../shape.js';
import { Tensor } from '../tensor.js';

export interface Dataset<T = unknown> {
  readonly length: number;
  get(i: number): T;
}

/** Rows of tensors that share their first dim: get(i) is [t0[i], t1[i], ...]. */
export class TensorDataset implements Dataset<Tensor[]> {
  readonly tensors: Tensor[];

  constructor(...tensors: Tensor[]) {
    if (!tensors.length) throw new Error('TensorDataset: expected at least one tensor');
    for (const t of tensors) {
      if (!(t instanceof Tensor)) throw new TypeError(`TensorDataset: expected Tensors, got ${typeof t}`);
      if (!t.shape.length || t.shape[0] !== tensors[0].shape[0]) {
        throw new ShapeError(`TensorDataset: size mismatch between tensors: ${tensors.map((x) => fmt(x.shape)).join(', ')} do not share a first dim`);
      }
    }
    this.tensors = tensors;
  }

  get length() {
    return this.tensors[0].shape[0];
  }

  get(i: number): Tensor[] {
    return this.tensors.map((t) => t.index(i));
  }

  /** @internal Rows start..end of every tensor, as views. */
  rows(start: number, end: number): Tensor[] {
    return this.tensors.map((t) => t.slice(0, start, end));
  }

  /** @internal The rows a 1-D int32 index names, gathered in the worker. */
  pick(index: Tensor): Tensor[] {
    return this.tensors.map((t) => t.indexSelect(0, index));
  }
}
