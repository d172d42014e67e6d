// Elementwise ops: one generated kernel family. Each op is an expression
// (see ELEMENTWISE in backend/kernel.ts) and its derivative is another
// expression, evaluated as ONE fused kernel over (grad, inputs..., output).

import * as spec from '../../lib/ops/elementwise.js';
import { binaryDType, unaryDType, type BinaryAttrs, type BinaryName, type UnaryName } from '../../lib/ops/elementwise.js';
import { c, f, x, type Expr } from '../backend/kernel.js';
import { implement, type OpDef } from './op.js';

type GradExpr = (g: Expr, a: Expr, y: Expr) => Expr;

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const geluExpr = (a: Expr) => f('mul', f('mul', c(0.5), a), f('add', c(1), f('erf', f('mul', a, c(SQRT1_2)))));

function unary(name: UnaryName, expr: (a: Expr) => Expr, grad: GradExpr): OpDef<{}> {
  const s = spec.UNARY[name];
  return implement(s, {
    forward: (ctx, [a]) => ctx.map(expr(x(0)), [a], a.shape, unaryDType(s.intOk, a.dtype)),
    backward: (ctx, g, [a], out) => [ctx.map(grad(x(0), x(1), x(2)), [g, a, out], a.shape)],
  });
}

const mul = (a: Expr, b: Expr) => f('mul', a, b);

export const UNARY_OPS: Record<UnaryName, OpDef<{}>> = {
  neg: unary('neg', (a) => f('neg', a), (g) => f('neg', g)),
  abs: unary('abs', (a) => f('abs', a), (g, a) => mul(g, f('sign', a))),
  exp: unary('exp', (a) => f('exp', a), (g, _a, y) => mul(g, y)),
  log: unary('log', (a) => f('log', a), (g, a) => f('div', g, a)),
  sqrt: unary('sqrt', (a) => f('sqrt', a), (g, _a, y) => f('div', g, mul(c(2), y))),
  sin: unary('sin', (a) => f('sin', a), (g, a) => mul(g, f('cos', a))),
  cos: unary('cos', (a) => f('cos', a), (g, a) => f('neg', mul(g, f('sin', a)))),
  square: unary('square', (a) => mul(a, a), (g, a) => mul(g, mul(c(2), a))),
  relu: unary('relu', (a) => f('relu', a), (g, a) => mul(g, f('gt', a, c(0)))),
  sigmoid: unary('sigmoid', (a) => f('sigmoid', a), (g, _a, y) => mul(g, mul(y, f('sub', c(1), y)))),
  tanh: unary('tanh', (a) => f('tanh', a), (g, _a, y) => mul(g, f('sub', c(1), mul(y, y)))),
  gelu: unary('gelu', geluExpr, (g, a) =>
    mul(g, f('add',
      mul(c(0.5), f('add', c(1), f('erf', mul(a, c(SQRT1_2))))),
      mul(a, mul(c(INV_SQRT_2PI), f('exp', mul(c(-0.5), mul(a, a))))),
    ))),
  softplus: unary('softplus', (a) => f('softplus', a), (g, a) => mul(g, f('sigmoid', a))),
  elu: unary('elu', (a) => f('where', f('gt', a, c(0)), a, f('sub', f('exp', a), c(1))), (g, a, y) => mul(g, f('where', f('gt', a, c(0)), c(1), f('add', y, c(1))))),
};

const tieSplit = (cmp: string, a: Expr, b: Expr) => f('add', f(cmp, a, b), mul(c(0.5), f('eq', a, b)));

type BinaryGrad = (g: Expr, a: Expr, b: Expr, y: Expr) => Expr;

/** Binary op with broadcasting; `grads` give d/da and d/db from (g, a, b, y). */
function binary(name: BinaryName, grads: [BinaryGrad, BinaryGrad] | null): OpDef<BinaryAttrs> {
  const s = spec.BINARY[name];
  // Operand expressions when inputs are laid out from `first` on.
  const operands = (at: BinaryAttrs, first: number): [Expr, Expr] =>
    at.scalar === undefined ? [x(first), x(first + 1)] : at.reversed ? [c(at.scalar), x(first)] : [x(first), c(at.scalar)];
  return implement(s, {
    forward: (ctx, ins, at) => {
      const [a, b] = operands(at, 0);
      return ctx.map(f(name, a, b), ins, undefined, binaryDType(s.result, ins, at));
    },
    backward: grads
      ? (ctx, g, ins, out, at) => {
          const [a, b] = operands(at, 1);
          const y = x(ins.length + 1);
          const scalarIsA = at.scalar !== undefined && at.reversed;
          return ins.map((t, i) => {
            const which = scalarIsA || i === 1 ? 1 : 0;
            return ctx.sumTo(ctx.map(grads[which](x(0), a, b, y), [g, ...ins, out], out.shape), t.shape);
          });
        }
      : undefined,
  });
}

export const BINARY_OPS: Record<BinaryName, OpDef<BinaryAttrs>> = {
  add: binary('add', [(g) => g, (g) => g]),
  sub: binary('sub', [(g) => g, (g) => f('neg', g)]),
  mul: binary('mul', [(g, _a, b) => mul(g, b), (g, a) => mul(g, a)]),
  div: binary('div', [(g, _a, b) => f('div', g, b), (g, _a, b, y) => f('neg', f('div', mul(g, y), b))]),
  pow: binary('pow', [
    (g, a, b) => mul(g, mul(b, f('pow', a, f('sub', b, c(1))))),
    // d/db a^b = a^b ln a; zero where a == 0 (PyTorch's convention for 0^b).
    (g, a, _b, y) => mul(g, f('where', f('eq', a, c(0)), c(0), mul(y, f('log', a)))),
  ]),
  // Ties split the gradient evenly between the operands, as PyTorch does.
  maximum: binary('maximum', [(g, a, b) => mul(g, tieSplit('gt', a, b)), (g, a, b) => mul(g, tieSplit('lt', a, b))]),
  minimum: binary('minimum', [(g, a, b) => mul(g, tieSplit('lt', a, b)), (g, a, b) => mul(g, tieSplit('gt', a, b))]),
  eq: binary('eq', null),
  ne: binary('ne', null),
  gt: binary('gt', null),
  ge: binary('ge', null),
  lt: binary('lt', null),
  le: binary('le', null),
};

const whereDType = (ins: { dtype: string }[]) => (ins[1].dtype === 'int32' && ins[2].dtype === 'int32' ? 'int32' : 'float32');

export const where = implement(spec.where, {
  forward: (ctx, ins) => ctx.map(f('where', x(0), x(1), x(2)), ins, undefined, whereDType(ins)),
  backward: (ctx, g, [cond, a, b]) => [
    null,
    ctx.sumTo(ctx.map(f('where', x(1), x(0), c(0)), [g, cond], g.shape), a.shape),
    ctx.sumTo(ctx.map(f('where', x(1), c(0), x(0)), [g, cond], g.shape), b.shape),
  ],
});

export const clamp = implement(spec.clamp, {
  forward: (ctx, [a], { min = -Infinity, max = Infinity }) => ctx.map(f('minimum', f('maximum', x(0), c(min)), c(max)), [a], a.shape, a.dtype),
  backward: (ctx, g, [a], _out, { min = -Infinity, max = Infinity }) => [
    ctx.map(mul(x(0), mul(f('ge', x(1), c(min)), f('le', x(1), c(max)))), [g, a], a.shape),
  ],
});

export const leakyRelu = implement(spec.leakyRelu, {
  forward: (ctx, [a], { slope }) => ctx.map(f('where', f('gt', x(0), c(0)), x(0), mul(x(0), c(slope))), [a], a.shape),
  backward: (ctx, g, [a], _out, { slope }) => [ctx.map(mul(x(0), f('where', f('gt', x(1), c(0)), c(1), c(slope))), [g, a], a.shape)],
});

export const cast = implement(spec.cast, {
  // float -> int truncates toward zero, like PyTorch's .int().
  forward: (ctx, [a], { dtype }) => ctx.map(x(0), [a], a.shape, dtype),
  backward: (ctx, g, [a]) => [a.dtype === 'float32' ? g : null],
});
