// DataLoader: batches a dataset, optionally shuffled, with `for await`.
// Before yielding each batch it waits while the worker is too far behind,
// so a training loop that awaits nothing else still cannot queue unbounded
// work (the backpressure of the op stream reaches loops here).

import { runtime } from '../context.js';
import { fromTyped, stack, Tensor, tensor, tidy } from '../tensor.js';
import { TensorDataset, type Dataset } from './dataset.js';
import { randperm } from './sampler.js';

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  /** Leave out the last batch when it would be smaller than batchSize. */
  dropLast?: boolean;
}

/** What a batch of items looks like: Tensors stack, numbers become a float32 tensor, arrays and objects batch per entry. */
export type Collated<T> = T extends Tensor | number
  ? Tensor
  : T extends readonly unknown[] ? { -readonly [K in keyof T]: Collated<T[K]> }
  : T extends object ? { [K in keyof T]: Collated<T[K]> }
  : never;

/** PyTorch's default_collate, for datasets that are not TensorDatasets. */
function collate(items: unknown[]): unknown {
  const first = items[0];
  // tidy frees stack's intermediate views; the items themselves are older and stay.
  if (first instanceof Tensor) return tidy(() => stack(items as Tensor[]));
  if (typeof first === 'number') return tensor(items as number[]);
  if (Array.isArray(first)) return first.map((_, j) => collate(items.map((it) => (it as unknown[])[j])));
  if (first && typeof first === 'object') return Object.fromEntries(Object.keys(first).map((k) => [k, collate(items.map((it) => (it as Record<string, unknown>)[k]))]));
  throw new TypeError(`DataLoader: cannot batch items of type ${typeof first}; get(i) should return Tensors, numbers, or arrays or objects of them`);
}

export class DataLoader<T = Tensor[]> implements AsyncIterable<Collated<T>> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;

  constructor(readonly dataset: Dataset<T>, { batchSize = 1, shuffle = false, dropLast = false }: DataLoaderOptions = {}) {
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
  }

  /** Number of batches per pass. */
  get length() {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Same as length (PyTorch's len(loader)). */
  len() {
    return this.length;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Collated<T>> {
    const ds = this.dataset;
    const n = ds.length;
    const batches = this.length;
    const order = this.shuffle ? randperm(n) : null;
    // A TensorDataset batches in the worker: slices in order, or gathers by the uploaded permutation.
    const perm = order && ds instanceof TensorDataset ? fromTyped(order, [n], 'int32') : null;
    try {
      for (let b = 0; b < batches; b++) {
        const start = b * this.batchSize;
        const end = Math.min(n, start + this.batchSize);
        let batch: unknown;
        // The index views are intermediates: tidy frees them once the gathers are queued.
        if (ds instanceof TensorDataset) batch = perm ? tidy(() => ds.pick(perm.slice(0, start, end))) : ds.rows(start, end);
        else batch = collate(Array.from({ length: end - start }, (_, i) => ds.get(order ? order[start + i] : start + i)));
        await runtime().throttle();
        yield batch as Collated<T>;
      }
    } finally {
      perm?.dispose();
    }
  }
}
