// Elementwise ops: one generated kernel family. Each op is an expression
// over its inputs (see ELEMENTWISE in backend/kernel.ts); its backward is
// derived from that expression (./derive.ts) and runs as ONE fused kernel
// per input over (grad, inputs..., output).

import * as spec from '../../lib/ops/elementwise.js';
import { binaryDType, unaryDType, type BinaryAttrs, type BinaryName, type UnaryName } from '../../lib/ops/elementwise.js';
import type { OpSpec } from '../../lib/ops/spec.js';
import type { DType } from '../../lib/shape.js';
import { activationExpr, c, f, x, type Expr } from '../backend/kernel.js';
import type { WT } from '../tensor.js';
import { gradients, shiftInputs } from './derive.js';
import { implement, type OpDef } from './op.js';

/**
 * An op computing `expr(attrs)` over its inputs x(0), x(1), ...; its backward
 * chains the expression's partials, gradients summed back over broadcast dims.
 */
export function elementwise<A>(s: OpSpec<A>, expr: (attrs: A) => Expr, dtype: (ins: WT[], attrs: A) => DType): OpDef<A> {
  return implement(s, {
    forward: (ctx, ins, at) => ctx.map(expr(at), ins, undefined, dtype(ins, at)),
    backward: s.differentiable
      ? (ctx, g, ins, out, at) => {
          // Kernel inputs: the gradient, the op's inputs, then its output.
          const grads = gradients(shiftInputs(expr(at), 1), x(0), x(ins.length + 1));
          return ins.map((t, i) => {
            const gi = grads.get(i + 1);
            if (!gi) return null;
            // A gradient that passes through unchanged (add, sub's left operand) needs no kernel.
            const full = 'in' in gi && gi.in === 0 ? g : ctx.map(gi, [g, ...ins, out], out.shape);
            return ctx.sumTo(full, t.shape);
          });
        }
      : undefined,
  });
}

const mul = (a: Expr, b: Expr) => f('mul', a, b);

const UNARY_EXPRS: Record<UnaryName, (a: Expr) => Expr> = {
  neg: (a) => f('neg', a),
  abs: (a) => f('abs', a),
  exp: (a) => f('exp', a),
  log: (a) => f('log', a),
  sqrt: (a) => f('sqrt', a),
  sin: (a) => f('sin', a),
  cos: (a) => f('cos', a),
  square: (a) => mul(a, a),
  relu: (a) => activationExpr('relu', a),
  sigmoid: (a) => activationExpr('sigmoid', a),
  tanh: (a) => activationExpr('tanh', a),
  gelu: (a) => activationExpr('gelu', a),
  softplus: (a) => f('softplus', a),
  elu: (a) => f('where', f('gt', a, c(0)), a, f('sub', f('exp', a), c(1))),
};

export const UNARY_OPS = Object.fromEntries(Object.entries(UNARY_EXPRS).map(([name, expr]) => {
  const s = spec.UNARY[name as UnaryName];
  return [name, elementwise(s, () => expr(x(0)), ([a]) => unaryDType(s.intOk, a.dtype))];
})) as Record<UnaryName, OpDef<{}>>;

/** Binary op with broadcasting; a plain-number operand is a constant of the expression. */
function binary(name: BinaryName): OpDef<BinaryAttrs> {
  const s = spec.BINARY[name];
  const expr = (at: BinaryAttrs) => (at.scalar === undefined ? f(name, x(0), x(1)) : at.reversed ? f(name, c(at.scalar), x(0)) : f(name, x(0), c(at.scalar)));
  return elementwise(s, expr, (ins, at) => binaryDType(s.result, ins, at));
}

export const BINARY_OPS = Object.fromEntries(Object.keys(spec.BINARY).map((name) => [name, binary(name as BinaryName)])) as Record<BinaryName, OpDef<BinaryAttrs>>;

export const where = elementwise(spec.where, () => f('where', x(0), x(1), x(2)), (ins) => (ins[1].dtype === 'int32' && ins[2].dtype === 'int32' ? 'int32' : 'float32'));

// Hand-written: PyTorch passes clamp's gradient at the bounds (min <= a <= max),
// where maximum/minimum's partials would split it at the tie.
export const clamp = implement(spec.clamp, {
  forward: (ctx, [a], { min = -Infinity, max = Infinity }) => ctx.map(f('minimum', f('maximum', x(0), c(min)), c(max)), [a], a.shape, a.dtype),
  backward: (ctx, g, [a], _out, { min = -Infinity, max = Infinity }) => [
    ctx.map(mul(x(0), mul(f('ge', x(1), c(min)), f('le', x(1), c(max)))), [g, a], a.shape),
  ],
});

export const leakyRelu = elementwise(spec.leakyRelu, ({ slope }) => f('where', f('gt', x(0), c(0)), x(0), mul(x(0), c(slope))), () => 'float32');

export const cast = implement(spec.cast, {
  // float -> int truncates toward zero, like PyTorch's .int().
  forward: (ctx, [a], { dtype }) => ctx.map(x(0), [a], a.shape, dtype),
  backward: (ctx, g, [a]) => [a.dtype === 'float32' ? g : null],
});
