// Backward rules derived from forward expressions: reverse-mode over one
// elementwise Expr tree, chaining each call's partials (ELEMENTWISE[op].d),
// so an elementwise op's backward is ONE fused map of g * d(expr)/d(input).

import { ELEMENTWISE, c, f, x, type Expr } from '../backend/kernel.js';

const isConst = (e: Expr, v: number) => 'c' in e && Object.is(e.c, v);
const isZero = (e: Expr) => 'c' in e && e.c === 0;
const same = (a: Expr, b: Expr) => JSON.stringify(a) === JSON.stringify(b);
const hasInput = (e: Expr): boolean => 'in' in e || ('op' in e && e.args.some(hasInput));
/** where(cond, p, q) with an exact-zero branch: a gradient masked by a where. */
const maskedWhere = (e: Expr): e is { op: 'where'; args: Expr[] } => 'op' in e && e.op === 'where' && (isZero(e.args[1]) || isZero(e.args[2]));

/**
 * Folds what chaining partials leaves behind: exact zeros (from a where's
 * untaken branch), ones, and sums of wheres on one condition. A factor
 * applied to a masked where moves into its branches, so the untaken branch
 * stays an exact 0 instead of 0 * inf = NaN (elu's exp branch at large x).
 */
function simplify(e: Expr): Expr {
  if (!('op' in e)) return e;
  const args = e.args.map(simplify);
  const [a, b] = args;
  const into = (w: Expr, fn: (branch: Expr) => Expr) => {
    const [cond, p, q] = (w as { args: Expr[] }).args;
    return simplify(f('where', cond, fn(p), fn(q)));
  };
  switch (e.op) {
    case 'mul':
      if (isZero(a) || isZero(b)) return c(0);
      if (isConst(a, 1)) return b;
      if (isConst(b, 1)) return a;
      if (maskedWhere(a)) return into(a, (p) => f('mul', p, b));
      if (maskedWhere(b)) return into(b, (p) => f('mul', a, p));
      break;
    case 'div':
      if (isZero(a)) return c(0);
      if (maskedWhere(a)) return into(a, (p) => f('div', p, b));
      break;
    case 'neg':
      if (isZero(a)) return c(0);
      if (maskedWhere(a)) return into(a, (p) => f('neg', p));
      break;
    case 'add':
      if (isZero(a)) return b;
      if (isZero(b)) return a;
      if (maskedWhere(a) && maskedWhere(b) && same(a.args[0], b.args[0])) {
        return simplify(f('where', a.args[0], f('add', a.args[1], b.args[1]), f('add', a.args[2], b.args[2])));
      }
      break;
    case 'where':
      if (isZero(args[1]) && isZero(args[2])) return c(0);
      break;
  }
  return f(e.op, ...args);
}

/**
 * The gradient of `expr` with respect to each input it reads, given that `g`
 * reaches its result; `out`, when given, reads the result itself (saved by
 * forward) where a partial needs it (exp, sigmoid, tanh, sqrt). Inputs absent
 * from the map get no gradient.
 */
export function gradients(expr: Expr, g: Expr, out?: Expr): Map<number, Expr> {
  const acc = new Map<number, Expr>();
  const visit = (e: Expr, ge: Expr, y: Expr) => {
    if ('c' in e) return;
    if ('in' in e) {
      const prev = acc.get(e.in);
      acc.set(e.in, prev ? f('add', prev, ge) : ge);
      return;
    }
    const d = ELEMENTWISE[e.op]?.d;
    if (!d) throw new Error(`gradients: '${e.op}' has no derivative`);
    d(ge, e.args, y).forEach((gi, i) => {
      if (gi && hasInput(e.args[i])) visit(e.args[i], gi, e.args[i]);
    });
  };
  visit(expr, g, out ?? expr);
  const simplified = new Map<number, Expr>();
  for (const [i, ge] of acc) {
    const s = simplify(ge);
    if (!isZero(s)) simplified.set(i, s);
  }
  return simplified;
}

/** The expression with input i read as input i + by (to make room for the gradient at input 0). */
export function shiftInputs(e: Expr, by: number): Expr {
  if ('in' in e) return x(e.in + by);
  if ('c' in e) return e;
  return f(e.op, ...e.args.map((a) => shiftInputs(a, by)));
}
