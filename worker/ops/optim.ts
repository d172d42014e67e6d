// In-place updates: optimizer steps and gradient clipping. Optimizer state
// lives on the device, as in PyTorch's `capturable` Adam: each group's
// hyper-parameters are a small tensor the page rewrites only when they change
// (a scheduler, a new lr), and each parameter's step count is a 0-d tensor.
// A step is then the same command every time, so a recorded program (Keras
// fit) replays it unchanged: one tiny kernel counts the steps and computes
// the step-dependent numbers (bias corrections, Adagrad's decayed lr) for
// every parameter, then ONE fused elementwise kernel per parameter writes the
// parameter and its state tensors in place.

import { c, f, x, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';

/** Switches that change the kernel's expression; everything numeric is a device scalar. */
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

/** One parameter's update: its tensors are [param, grad, step (rules that count), ...state]. */
export interface UpdateSlot {
  flags: UpdateFlags;
  /** Index of the parameter's group among the command's hyper-parameter tensors. */
  group: number;
}

/**
 * An optimizer step's attrs. The command's tensors are one hyper-parameter tensor per group
 * (its elements named by `groups[i]`), then each slot's tensors in slot order.
 */
export interface OptimizerAttrs {
  groups: string[][];
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
  /** How many state tensors (moments, buffers) follow the gradient and the step count. */
  states(flags: UpdateFlags): number;
  /** Whether the rule keeps a step count (every rule but SGD, as in PyTorch). */
  counted: boolean;
  /** Scalars that depend on the step count: `compute` gives them, in `names` order, from the group's hyper-parameters and the new count `t`. */
  perStep?: { names: string[]; compute(s: Record<string, Expr>, t: Expr): Expr[] };
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

/**
 * 1 - exp(z) for z <= 0 without the cancellation near 0 (WGSL has no expm1): a Taylor
 * series while |z| is small, where float32's 1 - exp(z) would lose most of its digits.
 * Bias corrections 1 - beta^t are this of t * log(beta).
 */
function oneMinusExp(z: Expr): Expr {
  let series: Expr = c(1);
  for (let k = 8; k >= 2; k--) series = add(c(1), mul(div(z, c(k)), series));
  return f('where', f('lt', z, c(-0.5)), sub(c(1), f('exp', z)), mul(f('neg', z), series));
}

// The rules follow PyTorch 1.13's single-tensor implementations term by term.
const RULES: Record<string, Rule> = {
  sgd: {
    counted: false,
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
    counted: true,
    states: (fl) => 2 + +!!fl.amsgrad,
    perStep: {
      names: ['stepSize', 'biasCorrection2Sqrt'],
      compute: (s, t) => [div(s.lr, oneMinusExp(mul(t, s.logBeta1))), f('sqrt', oneMinusExp(mul(t, s.logBeta2)))],
    },
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
    counted: true,
    states: () => 1,
    perStep: { names: ['clr'], compute: (s, t) => [div(s.lr, add(c(1), mul(sub(t, c(1)), s.lrDecay)))] },
    update: (a) => {
      const { p, state: [sum], s } = a;
      const d = gradient(a);
      const sum1 = add(sum, mul(d, d));
      return [sub(p, mul(s.clr, div(d, add(f('sqrt', sum1), s.eps)))), sum1];
    },
  },

  adadelta: {
    // square_avg, acc_delta
    counted: true,
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
    counted: true,
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

/** Buffers one dispatch may bind: the limit WebGPU guarantees on every adapter. */
const MAX_BINDINGS = 8;

interface SlotTensors {
  p: WT;
  g: WT;
  step: WT | null;
  state: WT[];
  slot: UpdateSlot;
}

/** Runs an optimizer rule over its parameters; see OptimizerAttrs for the tensors' order. */
function optimizerUpdate(ctx: Ctx, rule: Rule, ts: WT[], { groups, slots }: OptimizerAttrs) {
  // Each hyper-parameter is read through a 0-d view into its group's tensor.
  const hyper = groups.map((names, i): Record<string, WT> => {
    const h = ts[i];
    if (!h || h.size !== names.length) throw new Error(`update: group ${i} names ${names.length} hyper-parameters, its tensor holds ${h?.size}`);
    return Object.fromEntries(names.map((name, j) => [name, ctx.view(h, [], [], h.offset + j)]));
  });
  let next = groups.length;
  const parsed: SlotTensors[] = slots.map((slot) => {
    const n = 2 + +rule.counted + rule.states(slot.flags);
    const own = ts.slice(next, next + n);
    next += n;
    if (own.length !== n || !hyper[slot.group]) throw new Error(`update: too few tensors for ${slots.length} parameters`);
    const [p, g, ...rest] = own;
    return { p, g, step: rule.counted ? rest.shift()! : null, state: rest, slot };
  });
  if (next !== ts.length) throw new Error(`update: ${ts.length} tensors given, the rules used ${next}`);
  const perStep = rule.counted ? countSteps(ctx, rule, parsed, hyper) : parsed.map(() => ({}));
  parsed.forEach(({ p, g, state, slot }, i) => {
    const scalars: Record<string, WT> = { ...hyper[slot.group], ...perStep[i] };
    const names = Object.keys(scalars);
    const s = Object.fromEntries(names.map((name, j) => [name, x(j)]));
    // Tensor inputs follow the scalars: the param, the grad, then the state.
    const k = names.length;
    const exprs = rule.update({ p: x(k), g: x(k + 1), state: state.map((_, j) => x(k + 2 + j)), s, flags: slot.flags });
    ctx.mapInto(exprs, [...Object.values(scalars), p, g, ...state], [p, ...state]);
  });
}

/**
 * Adds one to every slot's step count and computes the rule's per-step scalars from the new
 * counts, in as few 0-d kernels as the binding limit allows (one for a small model). Returns
 * each slot's per-step scalars as views into a scratch tensor.
 */
function countSteps(ctx: Ctx, rule: Rule, slots: SlotTensors[], hyper: Record<string, WT>[]): Record<string, WT>[] {
  const names = rule.perStep?.names ?? [];
  const scratch = names.length ? ctx.empty([slots.length * names.length]) : null;
  const views = slots.map((_, i) => Object.fromEntries(names.map((name, j) => [name, ctx.view(scratch!, [], [], i * names.length + j)])));
  for (let start = 0; start < slots.length; ) {
    // Take slots while the kernel's distinct buffers fit: the steps, the scratch and the groups' hyper tensors.
    const buffers = new Set(scratch ? [scratch.buf] : []);
    let end = start;
    for (; end < slots.length; end++) {
      const more = [slots[end].step!.buf, ...(names.length ? Object.values(hyper[slots[end].slot.group]).map((v) => v.buf) : [])];
      if (end > start && new Set([...buffers, ...more]).size > MAX_BINDINGS) break;
      for (const b of more) buffers.add(b);
    }
    const chunk = slots.slice(start, end);
    const inputs: WT[] = chunk.map((sl) => sl.step!);
    const exprs: Expr[] = [];
    const outputs: WT[] = [];
    chunk.forEach((sl, i) => {
      const t = add(x(i), c(1));
      exprs.push(t);
      outputs.push(sl.step!);
      if (!names.length) return;
      const s = Object.fromEntries(Object.entries(hyper[sl.slot.group]).map(([name, view]) => [name, x(inputs.push(view) - 1)]));
      rule.perStep!.compute(s, t).forEach((e, j) => {
        exprs.push(e);
        outputs.push(views[start + i][names[j]]);
      });
    });
    ctx.mapInto(exprs, inputs, outputs);
    start = end;
  }
  return views;
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
