// Every op the page can record, by name: its spec. The worker attaches a
// forward (and a backward where differentiable) to each (worker/ops/index.ts).

import { BINARY, UNARY, cast, clamp, leakyRelu, where } from './elementwise.js';
import { argmax, argmin, logSoftmax, max, mean, min, softmax, sum } from './reduce.js';
import { linear, matmul } from './matmul.js';
import { cat, clone, expand, gather, indexSelect, permute, reshape, select, slice } from './movement.js';
import { arange, full, random } from './create.js';
import { binaryCrossEntropy, classAccuracy, embedding, geluTanh, pad, softmaxCrossEntropy } from './nn.js';
import { recurrent } from './recurrent.js';
import { conv2d } from './conv.js';
import { pool2d } from './pool.js';
import { attention } from './attention.js';

export const SPECS = {
  ...UNARY, ...BINARY, where, clamp, leakyRelu, cast,
  sum, mean, max, min, argmax, argmin, softmax, logSoftmax,
  matmul, linear,
  reshape, permute, expand, slice, select, cat, gather, indexSelect, clone,
  full, arange, random,
  pad, conv2d, pool2d, embedding, geluTanh, binaryCrossEntropy, softmaxCrossEntropy, classAccuracy,
  recurrent, attention,
};

export type OpName = keyof typeof SPECS;
