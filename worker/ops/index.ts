// The op registry: every op the page can record, by name.

import type { OpDef } from './op.js';
import { BINARY_OPS, UNARY_OPS, cast, clamp, leakyRelu, where } from './elementwise.js';
import { argmax, argmin, logSoftmax, max, mean, min, softmax, sum } from './reduce.js';
import { linear, matmul } from './matmul.js';
import { cat, clone, expand, gather, indexSelect, permute, reshape, select, slice } from './movement.js';
import { arange, full, random } from './create.js';
import { binaryCrossEntropy, embedding, geluTanh, pad, windows2d } from './nn.js';
import { recurrent } from './recurrent.js';

export const OPS: Record<string, OpDef> = {
  ...UNARY_OPS, ...BINARY_OPS, where, clamp, leakyRelu, cast,
  sum, mean, max, min, argmax, argmin, softmax, logSoftmax,
  matmul, linear,
  reshape, permute, expand, slice, select, cat, gather, indexSelect, clone,
  full, arange, random,
  pad, windows2d, embedding, geluTanh, binaryCrossEntropy,
  recurrent,
};
