// Specs of the elementwise ops (implemented in worker/ops/elementwise.ts).

import { broadcastShapes, type DType } from '../shape.js';
import { defineSpec, meta, type Meta, type OpSpec } from './spec.js';

/** Unary ops keep int32 only where `intOk` (neg, abs, square); the rest compute in float32. */
export const unaryDType = (intOk: boolean, d: DType): DType => (intOk && d === 'int32' ? 'int32' : 'float32');

const unary = (intOk = false) => Object.assign(defineSpec<{}>({ shape: ([a]) => meta(a.shape, unaryDType(intOk, a.dtype)) }), { intOk });

export const UNARY = {
  neg: unary(true),
  abs: unary(true),
  exp: unary(),
  log: unary(),
  sqrt: unary(),
  sin: unary(),
  cos: unary(),
  square: unary(true),
  relu: unary(),
  sigmoid: unary(),
  tanh: unary(),
  // Exact (erf) GELU, PyTorch's default.
  gelu: unary(),
  softplus: unary(),
  elu: unary(),
};

export type UnaryName = keyof typeof UNARY;

export interface BinaryAttrs {
  /** Present when the other operand is a plain number. */
  scalar?: number;
  /** The scalar is the left operand (2 - t). */
  reversed?: boolean;
}

/** 'arith' ops keep int32 when every operand is an integer; the rest yield float32. */
export type BinaryResult = 'arith' | 'float';

export const binaryDType = (result: BinaryResult, ins: Meta[], at: BinaryAttrs): DType =>
  result === 'arith' && ins.every((m) => m.dtype === 'int32') && (at.scalar === undefined || Number.isInteger(at.scalar)) ? 'int32' : 'float32';

function binary(name: string, result: BinaryResult, differentiable = true): OpSpec<BinaryAttrs> & { result: BinaryResult } {
  const shape = (ins: Meta[], at: BinaryAttrs) => meta(ins.length === 2 ? broadcastShapes(ins[0].shape, ins[1].shape, name) : ins[0].shape, binaryDType(result, ins, at));
  return { shape, differentiable, result };
}

export const BINARY = {
  add: binary('add', 'arith'),
  sub: binary('sub', 'arith'),
  mul: binary('mul', 'arith'),
  div: binary('div', 'float'),
  pow: binary('pow', 'float'),
  maximum: binary('maximum', 'arith'),
  minimum: binary('minimum', 'arith'),
  // Comparisons yield 1 or 0 and carry no gradient.
  eq: binary('eq', 'float', false),
  ne: binary('ne', 'float', false),
  gt: binary('gt', 'float', false),
  ge: binary('ge', 'float', false),
  lt: binary('lt', 'float', false),
  le: binary('le', 'float', false),
};

export type BinaryName = keyof typeof BINARY;

/** where(cond, a, b): cond != 0 picks a; all three broadcast. */
export const where = defineSpec<{}>({
  shape: ([cond, a, b]) => meta(broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where'), a.dtype === 'int32' && b.dtype === 'int32' ? 'int32' : 'float32'),
});

export const clamp = defineSpec<{ min?: number; max?: number }>({
  shape: ([a]) => meta(a.shape, a.dtype),
});

export const leakyRelu = defineSpec<{ slope: number }>({
  shape: ([a]) => meta(a.shape, 'float32'),
});

export const cast = defineSpec<{ dtype: DType }>({
  shape: ([a], { dtype }) => meta(a.shape, dtype),
});
