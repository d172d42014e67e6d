// DataLoader: batches a dataset, optionally shuffled, with `for await`.
// Before yielding each batch it waits while the worker is too far behind,
// so a training loop that awaits nothing else still cannot queue unbounded
// work (the backpressure of the op stream reaches loops here).

import { runtime } from '../context.js';
import { fromTyped, stack, Tensor, tensor, tidy } from '../tensor.js';
import { TensorDataset, type Dataset } from './dataset.js';
import { randperm } from './sampler.js';
import { pyArgs, type PyRest } from '../nn/args.js';

export interface DataLoaderOptions<T = unknown> {
  batchSize?: number;
  shuffle?: boolean;
  /** Only null: custom samplers are not supported (use shuffle). */
  sampler?: null;
  /** Only null. */
  batchSampler?: null;
  /** Accepted for PyTorch code: batches are built in the engine's worker whatever the number. */
  numWorkers?: number;
  /** Builds a batch from the items get(i) returned (PyTorch's collate_fn); default: stack tensors, numbers become a tensor. */
  collateFn?: ((items: T[]) => unknown) | null;
  /** Accepted for PyTorch code; no effect (there is no host/device copy to pin). */
  pinMemory?: boolean;
  /** Leave out the last batch when it would be smaller than batchSize. */
  dropLast?: boolean;
}

/** What a batch of items looks like: Tensors stack, numbers become a float32 tensor, arrays and objects batch per entry. */
export type Collated<T> = T extends Tensor | number
  ? Tensor
  : T extends readonly unknown[] ? { -readonly [K in keyof T]: Collated<T[K]> }
  : T extends object ? { [K in keyof T]: Collated<T[K]> }
  : never;

/**
 * PyTorch's default_collate, for datasets that are not TensorDatasets. Numbers
 * that are all integers become int32 (PyTorch's int64 lengths and labels),
 * others float32.
 */
export function defaultCollate(items: unknown[]): unknown {
  const first = items[0];
  // tidy frees stack's intermediate views; the items themselves are older and stay.
  if (first instanceof Tensor) return tidy(() => stack(items as Tensor[]));
  if (typeof first === 'number') return tensor(items as number[], undefined, { dtype: (items as number[]).every(Number.isInteger) ? 'int32' : 'float32' });
  if (Array.isArray(first)) return first.map((_, j) => defaultCollate(items.map((it) => (it as unknown[])[j])));
  if (first && typeof first === 'object') return Object.fromEntries(Object.keys(first).map((k) => [k, defaultCollate(items.map((it) => (it as Record<string, unknown>)[k]))]));
  throw new TypeError(`DataLoader: cannot batch items of type ${typeof first}; get(i) should return Tensors, numbers, or arrays or objects of them`);
}

export class DataLoader<T = Tensor[]> implements AsyncIterable<Collated<T>> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly numWorkers: number;
  readonly collateFn: ((items: T[]) => unknown) | null;

  /** PyTorch's order: batchSize, shuffle, sampler, batchSampler, numWorkers, collateFn, pinMemory, dropLast. */
  constructor(readonly dataset: Dataset<T>,
    ...rest: PyRest<[batchSize: number, shuffle: boolean, sampler: null, batchSampler: null, numWorkers: number, collateFn: ((items: T[]) => unknown) | null, pinMemory: boolean, dropLast: boolean], DataLoaderOptions<T>>) {
    const { batchSize = 1, shuffle = false, sampler = null, batchSampler = null, numWorkers = 0, collateFn = null, dropLast = false } = pyArgs<DataLoaderOptions<T>>('DataLoader', rest,
      { batchSize: 'int', shuffle: 'boolean', sampler: 'any', batchSampler: 'any', numWorkers: 'int', collateFn: 'function?', pinMemory: 'boolean', dropLast: 'boolean' });
    if (sampler !== null || batchSampler !== null) throw new TypeError('DataLoader: custom samplers are not supported; use shuffle, or a Dataset whose get(i) picks the order');
    if (!dataset || typeof dataset.get !== 'function' || typeof dataset.length !== 'number') throw new TypeError('DataLoader: dataset must have a length and get(i) (e.g. a TensorDataset)');
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    this.numWorkers = numWorkers;
    this.collateFn = collateFn;
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
        const indices = Array.from({ length: end - start }, (_, i) => (order ? order[start + i] : start + i));
        if (this.collateFn) batch = this.collateFn(indices.map((i) => ds.get(i)));
        else if (ds instanceof TensorDataset) batch = perm ? tidy(() => ds.pick(perm.slice(0, start, end))) : ds.rows(start, end);
        else batch = defaultCollate(indices.map((i) => ds.get(i)));
        await runtime().throttle();
        yield batch as Collated<T>;
      }
    } finally {
      perm?.dispose();
    }
  }
}
