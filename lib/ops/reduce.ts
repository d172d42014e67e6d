// Specs of the reductions and softmax (implemented in worker/ops/reduce.ts).

import { normDim, reducedShape, type Shape } from '../shape.js';
import { defineSpec, meta, type Meta } from './spec.js';

export interface ReduceAttrs {
  /** Undefined: every dim. */
  dims?: number[];
  keepdim?: boolean;
}

/** The reduced dims, normalised, deduplicated and sorted. */
export const dimsOf = (shape: Shape, dims: number[] | undefined, op: string) =>
  [...new Set(dims === undefined ? shape.map((_, i) => i) : dims.map((d) => normDim(d, shape.length, op, shape)))].sort((a, b) => a - b);

const reduceSpec = (op: string) => defineSpec<ReduceAttrs>({
  shape: ([a]: Meta[], at) => meta(reducedShape(a.shape, dimsOf(a.shape, at.dims, op), !!at.keepdim, op), op === 'mean' ? 'float32' : a.dtype),
});

export const sum = reduceSpec('sum');
export const mean = reduceSpec('mean');
/** amax / amin. */
export const max = reduceSpec('max');
export const min = reduceSpec('min');

export interface ArgAttrs {
  /** Undefined: index into the flattened tensor. */
  dim?: number;
  keepdim?: boolean;
}

const argSpec = (op: 'argmax' | 'argmin') => defineSpec<ArgAttrs>({
  shape: ([a], { dim, keepdim }) =>
    meta(dim === undefined ? (keepdim ? a.shape.map(() => 1) : []) : reducedShape(a.shape, [dim], !!keepdim, op), 'int32'),
  differentiable: false,
});

export const argmax = argSpec('argmax');
export const argmin = argSpec('argmin');

export interface SoftmaxAttrs {
  dim: number;
}

const softmaxSpec = (op: 'softmax' | 'logSoftmax') => defineSpec<SoftmaxAttrs>({
  shape: ([a], { dim }) => {
    normDim(dim, a.shape.length, op, a.shape);
    return meta(a.shape, 'float32');
  },
});

export const softmax = softmaxSpec('softmax');
export const logSoftmax = softmaxSpec('logSoftmax');
