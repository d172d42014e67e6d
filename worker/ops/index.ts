// The op registry: every spec of lib/ops/index.ts with its forward and backward.

import type { OpName } from '../../lib/ops/index.js';
import type { OpDef } from './op.js';
import { BINARY_OPS, UNARY_OPS, cast, clamp, leakyRelu, where } from './elementwise.js';
import { argmax, argmin, logSoftmax, max, mean, min, softmax, sum } from './reduce.js';
import { linear, matmul } from './matmul.js';
import { cat, clone, expand, gather, indexSelect, permute, reshape, select, slice } from './movement.js';
import { arange, full, random } from './create.js';
import { binaryCrossEntropy, classAccuracy, embedding, geluTanh, pad, softmaxCrossEntropy } from './nn.js';
import { recurrent } from './recurrent.js';
import { conv2d } from './conv.js';
import { pool2d } from './pool.js';
import { attention } from './attention.js';

const implemented = {
  ...UNARY_OPS, ...BINARY_OPS, where, clamp, leakyRelu, cast,
  sum, mean, max, min, argmax, argmin, softmax, logSoftmax,
  matmul, linear,
  reshape, permute, expand, slice, select, cat, gather, indexSelect, clone,
  full, arange, random,
  pad, conv2d, pool2d, embedding, geluTanh, binaryCrossEntropy, softmaxCrossEntropy, classAccuracy,
  recurrent, attention,
  // Every spec has an implementation, and (excess property check) every implementation a spec.
} satisfies Record<OpName, OpDef>;

export const OPS: Readonly<Record<string, OpDef>> = implemented;

// Table-built ops (elementwise) decide differentiability at run time: check each against its spec once, at load.
for (const [name, def] of Object.entries(implemented)) {
  if (def.differentiable !== !!def.backward) throw new Error(`op '${name}': its spec says differentiable: ${def.differentiable}, its implementation ${def.backward ? 'has' : 'lacks'} a backward`);
}
