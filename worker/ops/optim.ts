// In-place updates: optimizer steps and gradient clipping. Each parameter's
// update is ONE fused elementwise kernel that writes the parameter and its
// state tensors in place. Step-dependent numbers (lr, bias corrections) come
// from the page as scalars in one small buffer per command, so the generated
// kernel, and its cached pipeline, stays the same from step to step.

import { f, x, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';

/** Switches that change the kernel's expression; everything numeric is a scalar. */
export interface UpdateFlags {
  maximize?: boolean;
  /** Weight decay added to the gradient (L2), or applied to the parameter (AdamW) when `decoupled`. */
  weightDecay?: boolean;
  decoupled?: boolean;
  momentum?: boolean;
  /** SGD's first step: the momentum buffer starts as the gradient itself. */
  first?: boolean;
  nesterov?: boolean;
  amsgrad?: boolean;
  centered?: boolean;
}

/** One parameter's update: its tensors are [param, grad, ...state], in the rule's state order. */
export interface UpdateSlot {
  flags: UpdateFlags;
  scalars: Record<string, number>;
}

export interface OptimizerAttrs {
  slots: UpdateSlot[];
}

interface RuleArgs {
  p: Expr;
  g: Expr;
  state: Expr[];
  s: Record<string, Expr>;
  flags: UpdateFlags;
}

interface Rule {
  /** How many state tensors follow the gradient. */
  states(flags: UpdateFlags): number;
  /** New values for [param, ...state], written in terms of the old ones (every output reads old inputs). */
  update(a: RuleArgs): Expr[];
}

const add = (a: Expr, b: Expr) => f('add', a, b);
const sub = (a: Expr, b: Expr) => f('sub', a, b);
const mul = (a: Expr, b: Expr) => f('mul', a, b);
const div = (a: Expr, b: Expr) => f('div', a, b);

/** The gradient as the rules use it: negated when maximizing, plus L2 weight decay. */
function gradient({ p, g, s, flags }: RuleArgs): Expr {
  const d = flags.maximize ? f('neg', g) : g;
  return flags.weightDecay && !flags.decoupled ? add(d, mul(s.weightDecay, p)) : d;
}

// The rules follow PyTorch 1.13's single-tensor implementations term by term.
const RULES: Record<string, Rule> = {
  sgd: {
    states: (fl) => +!!fl.momentum,
    update: (a) => {
      const { p, state: [buf], s, flags } = a;
      const d = gradient(a);
      if (!flags.momentum) return [sub(p, mul(s.lr, d))];
      const b = flags.first ? d : add(mul(buf, s.momentum), mul(s.dampened, d));
      const step = flags.nesterov ? add(d, mul(s.momentum, b)) : b;
      return [sub(p, mul(s.lr, step)), b];
    },
  },

  adam: {
    states: (fl) => 2 + +!!fl.amsgrad,
    update: (a) => {
      const { p, state: [m, v, vmax], s, flags } = a;
      const d = gradient(a);
      const m1 = add(mul(m, s.beta1), mul(s.oneMinusBeta1, d));
      const v1 = add(mul(v, s.beta2), mul(mul(s.oneMinusBeta2, d), d));
      const vmax1 = flags.amsgrad ? f('maximum', vmax, v1) : null;
      const denom = add(div(f('sqrt', vmax1 ?? v1), s.biasCorrection2Sqrt), s.eps);
      const decayed = flags.weightDecay && flags.decoupled ? mul(p, s.decay) : p;
      return [sub(decayed, mul(s.stepSize, div(m1, denom))), m1, v1, ...(vmax1 ? [vmax1] : [])];
    },
  },

  adagrad: {
    states: () => 1,
    update: (a) => {
      const { p, state: [sum], s } = a;
      const d = gradient(a);
      const sum1 = add(sum, mul(d, d));
      return [sub(p, mul(s.clr, div(d, add(f('sqrt', sum1), s.eps)))), sum1];
    },
  },

  adadelta: {
    // square_avg, acc_delta
    states: () => 2,
    update: (a) => {
      const { p, state: [sq, acc], s } = a;
      const d = gradient(a);
      const sq1 = add(mul(sq, s.rho), mul(mul(s.oneMinusRho, d), d));
      const delta = mul(div(f('sqrt', add(acc, s.eps)), f('sqrt', add(sq1, s.eps))), d);
      const acc1 = add(mul(acc, s.rho), mul(mul(s.oneMinusRho, delta), delta));
      return [sub(p, mul(s.lr, delta)), sq1, acc1];
    },
  },

  rmsprop: {
    // square_avg, then momentum_buffer and grad_avg when used.
    states: (fl) => 1 + +!!fl.momentum + +!!fl.centered,
    update: (a) => {
      const { p, s, flags } = a;
      const [sq, ...rest] = a.state;
      const buf = flags.momentum ? rest.shift()! : null;
      const gavg = flags.centered ? rest.shift()! : null;
      const d = gradient(a);
      const sq1 = add(mul(sq, s.alpha), mul(mul(s.oneMinusAlpha, d), d));
      const gavg1 = gavg ? add(mul(gavg, s.alpha), mul(s.oneMinusAlpha, d)) : null;
      const avg = add(f('sqrt', gavg1 ? sub(sq1, mul(gavg1, gavg1)) : sq1), s.eps);
      if (!buf) return [sub(p, mul(s.lr, div(d, avg))), sq1, ...(gavg1 ? [gavg1] : [])];
      const buf1 = add(mul(buf, s.momentum), div(d, avg));
      return [sub(p, mul(s.lr, buf1)), sq1, buf1, ...(gavg1 ? [gavg1] : [])];
    },
  },
};

/** Runs an optimizer rule over its parameters: tensors are [param, grad, ...state] per slot, in slot order. */
function optimizerUpdate(ctx: Ctx, rule: Rule, ts: WT[], { slots }: OptimizerAttrs) {
  const names = slots.map((sl) => Object.keys(sl.scalars));
  const values = Float32Array.from(slots.flatMap((sl) => Object.values(sl.scalars)));
  // One upload for the whole step; each scalar is read through a 0-d view into it.
  const scalars = ctx.fromData(values, [values.length], 'float32');
  let next = 0;
  let k = 0;
  slots.forEach((slot, i) => {
    const s: Record<string, Expr> = {};
    const scalarViews = names[i].map((name, j) => {
      s[name] = x(j);
      return ctx.view(scalars, [], [], k++);
    });
    // Tensor inputs follow the scalars: the param, the grad, then the state.
    const first = scalarViews.length;
    const nState = rule.states(slot.flags);
    const [p, g, ...state] = ts.slice(next, next + 2 + nState);
    next += 2 + nState;
    if (!g || state.length !== nState) throw new Error(`update: too few tensors for ${slots.length} parameters`);
    const exprs = rule.update({ p: x(first), g: x(first + 1), state: state.map((_, j) => x(first + 2 + j)), s, flags: slot.flags });
    ctx.mapInto(exprs, [...scalarViews, p, g, ...state], [p, ...state]);
  });
  if (next !== ts.length) throw new Error(`update: ${ts.length} tensors given, the rules used ${next}`);
}

/** Multiplies tensors[1..] in place by the 0-d tensor tensors[0] (gradient clipping). */
function scale(ctx: Ctx, [coef, ...targets]: WT[]) {
  for (const t of targets) ctx.mapInto([mul(x(0), x(1))], [t, coef], [t]);
}

/** In-place updates by name, as the engine's 'update' command names them. */
export const UPDATES: Record<string, (ctx: Ctx, tensors: WT[], attrs: any) => void> = {
  ...Object.fromEntries(Object.entries(RULES).map(([name, rule]) => [name, (ctx: Ctx, ts: WT[], attrs: OptimizerAttrs) => optimizerUpdate(ctx, rule, ts, attrs)])),
  scale,
};

/**
 * The attrs of an 'update' command recorded at one step, moved `later` steps on:
 * Keras fit replays a recorded step, and Adam's bias corrections depend on the count.
 */
export function updateAttrsAtLaterStep(rule: string, attrs: OptimizerAttrs, later: number): OptimizerAttrs {
  if (later === 0) return attrs;
  if (rule === 'adagrad') {
    return {
      slots: attrs.slots.map(({ flags, scalars }) => {
        const { lr, lrDecay, step } = scalars;
        return { flags, scalars: { ...scalars, step: step + later, clr: lr / (1 + (step + later - 1) * lrDecay) } };
      }),
    };
  }
  if (rule !== 'adam') return attrs;
  return {
    slots: attrs.slots.map(({ flags, scalars }) => {
      const { lr, step, beta1, beta2 } = scalars;
      const t = step + later;
      return { flags, scalars: { ...scalars, step: t, stepSize: lr / (1 - beta1 ** t), biasCorrection2Sqrt: Math.sqrt(1 - beta2 ** t) } };
    }),
  };
}
