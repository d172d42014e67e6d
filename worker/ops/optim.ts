// In-place updates: optimizer steps and gradient clipping, as multi-tensor
// kernels (PyTorch's `foreach`/`fused` optimizers). Optimizer state lives on
// the device, as in PyTorch's `capturable` Adam: each group's
// hyper-parameters, each parameter's step count, step-dependent scalars and
// moments are views of the optimizer's one flat state tensor (lib/optim), so
// a step is the same command every time and a recorded program (Keras fit)
// replays it unchanged. A step is two kernels: one counts every parameter's
// step and computes its step-dependent numbers (bias corrections, Adagrad's
// decayed lr); one updates every parameter and its state in place, each
// parameter a segment of one MultiMapKernel. Only WebGPU's binding limit
// splits the second: the flat state is one binding, each parameter and
// gradient one more.

import { c, f, x, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';

/** Switches that change which state tensors a rule keeps; everything else is a device scalar. */
export interface UpdateFlags {
  momentum?: boolean;
  amsgrad?: boolean;
  centered?: boolean;
}

/**
 * One parameter's update. Its tensors, in order: param, grad; for rules that count steps, the
 * 0-d step count and (when the rule has any) a 1-D tensor of its step-dependent scalars; then
 * the rule's state tensors.
 */
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
  /** How many state tensors (moments, buffers) follow the step-dependent scalars. */
  states(flags: UpdateFlags): number;
  /** Whether the rule keeps a step count (every rule but SGD without momentum). */
  counted(flags: UpdateFlags): boolean;
  /** Scalars that depend on the step count: `compute` gives them, in `names` order, from the group's hyper-parameters and the new count `t`. */
  perStep?: { names: string[]; compute(s: Record<string, Expr>, t: Expr): Expr[] };
  /** New values for [param, ...state], written in terms of the old ones (every output reads old inputs). */
  update(a: RuleArgs): Expr[];
}

const add = (a: Expr, b: Expr) => f('add', a, b);
const sub = (a: Expr, b: Expr) => f('sub', a, b);
const mul = (a: Expr, b: Expr) => f('mul', a, b);
const div = (a: Expr, b: Expr) => f('div', a, b);

/**
 * The gradient as the rules use it: times `sign` (-1 when maximizing), plus L2 weight decay.
 * Both are device scalars, exact when off (times 1, plus 0 * p), so changing them never
 * changes the kernel.
 */
function gradient({ p, g, s }: RuleArgs): Expr {
  return add(mul(g, s.sign), mul(s.weightDecay, p));
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
    // With momentum, a hidden step count tells the first step, where the buffer starts as the gradient.
    counted: (fl) => !!fl.momentum,
    states: (fl) => +!!fl.momentum,
    perStep: { names: ['started'], compute: (_, t) => [f('gt', t, c(1))] },
    update: (a) => {
      const { p, state: [buf], s, flags } = a;
      const d = gradient(a);
      if (!flags.momentum) return [sub(p, mul(s.lr, d))];
      const b = f('where', s.started, add(mul(buf, s.momentum), mul(s.dampened, d)), d);
      const step = f('where', s.nesterov, add(d, mul(s.momentum, b)), b);
      return [sub(p, mul(s.lr, step)), b];
    },
  },

  adam: {
    counted: () => true,
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
      // AdamW's decoupled decay: `decay` is 1 - lr * weightDecay (1 for Adam, whose decay is in the gradient).
      return [sub(mul(p, s.decay), mul(s.stepSize, div(m1, denom))), m1, v1, ...(vmax1 ? [vmax1] : [])];
    },
  },

  adagrad: {
    counted: () => true,
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
    counted: () => true,
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
    counted: () => true,
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

/** Names of the step-dependent scalars a rule keeps for a parameter with these flags. */
const perStepNames = (rule: Rule, flags: UpdateFlags) => (rule.counted(flags) ? rule.perStep?.names ?? [] : []);

interface SlotTensors {
  p: WT;
  g: WT;
  step: WT | null;
  /** 0-d views of the step-dependent scalars, by name. */
  perStep: Record<string, WT>;
  state: WT[];
  slot: UpdateSlot;
}

/** 0-d views of a 1-D tensor's elements, by name. */
function named(ctx: Ctx, t: WT, names: string[], what: string): Record<string, WT> {
  if (t.size !== names.length || t.shape.length !== 1 || t.strides[0] !== 1) throw new Error(`update: ${what} must be a contiguous 1-D tensor of ${names.length} (${names.join(', ')}), got ${t.size} elements`);
  return Object.fromEntries(names.map((name, j) => [name, ctx.view(t, [], [], t.offset + j)]));
}

/** Runs an optimizer rule over its parameters; see OptimizerAttrs for the tensors' order. */
function optimizerUpdate(ctx: Ctx, rule: Rule, ts: WT[], { groups, slots }: OptimizerAttrs) {
  const hyper = groups.map((names, i) => {
    if (!ts[i]) throw new Error(`update: no hyper-parameter tensor for group ${i}`);
    return named(ctx, ts[i], names, `group ${i}'s hyper-parameters`);
  });
  let next = groups.length;
  const parsed: SlotTensors[] = slots.map((slot) => {
    const counted = rule.counted(slot.flags);
    const names = perStepNames(rule, slot.flags);
    const n = 2 + +counted + +(names.length > 0) + rule.states(slot.flags);
    const own = ts.slice(next, next + n);
    next += n;
    if (own.length !== n || !hyper[slot.group]) throw new Error(`update: too few tensors for ${slots.length} parameters`);
    const [p, g, ...rest] = own;
    const step = counted ? rest.shift()! : null;
    const perStep = names.length ? named(ctx, rest.shift()!, names, 'the step-dependent scalars') : {};
    return { p, g, step, perStep, state: rest, slot };
  });
  if (next !== ts.length) throw new Error(`update: ${ts.length} tensors given, the rules used ${next}`);
  countSteps(ctx, rule, parsed.filter((sl) => sl.step), hyper);
  // Parameters whose flags give the same expressions share kernels.
  const kinds = new Map<string, SlotTensors[]>();
  for (const sl of parsed) {
    const key = JSON.stringify([sl.slot.flags, groups[sl.slot.group], Object.keys(sl.perStep)]);
    kinds.set(key, [...(kinds.get(key) ?? []), sl]);
  }
  for (const same of kinds.values()) {
    const { slot, perStep, state } = same[0];
    // Slots: the scalars (read once per segment), then the param, the grad and the state.
    const names = [...groups[slot.group], ...Object.keys(perStep)];
    const s = Object.fromEntries(names.map((name, j) => [name, x(j)]));
    const k = names.length;
    const exprs = rule.update({ p: x(k), g: x(k + 1), state: state.map((_, j) => x(k + 2 + j)), s, flags: slot.flags });
    const scalar = [...names.map(() => true), false, false, ...state.map(() => false)];
    ctx.runSegments(exprs, scalar, same.map((sl) => {
      const scalars = { ...hyper[sl.slot.group], ...sl.perStep };
      return { inputs: [...names.map((name) => scalars[name]), sl.p, sl.g, ...sl.state], outputs: [sl.p, ...sl.state] };
    }));
  }
}

/**
 * Adds one to every slot's step count and computes the rule's step-dependent scalars from the
 * new count: one kernel, each parameter a one-element segment.
 */
function countSteps(ctx: Ctx, rule: Rule, slots: SlotTensors[], hyper: Record<string, WT>[]) {
  const kinds = new Map<string, SlotTensors[]>();
  for (const sl of slots) {
    const key = JSON.stringify([Object.keys(hyper[sl.slot.group]), Object.keys(sl.perStep)]);
    kinds.set(key, [...(kinds.get(key) ?? []), sl]);
  }
  for (const same of kinds.values()) {
    const names = Object.keys(same[0].perStep);
    const hyperNames = names.length ? Object.keys(hyper[same[0].slot.group]) : [];
    const s = Object.fromEntries(hyperNames.map((name, j) => [name, x(j + 1)]));
    const t = add(x(0), c(1));
    const exprs = [t, ...(names.length ? rule.perStep!.compute(s, t) : [])];
    const scalar = [false, ...hyperNames.map(() => true)];
    ctx.runSegments(exprs, scalar, same.map((sl) => ({
      inputs: [sl.step!, ...hyperNames.map((name) => hyper[sl.slot.group][name])],
      outputs: [sl.step!, ...names.map((name) => sl.perStep[name])],
    })));
  }
}

/** Multiplies tensors[1..] in place by the 0-d tensor tensors[0] (gradient clipping): one multi-tensor kernel. */
function scale(ctx: Ctx, [coef, ...targets]: WT[]) {
  ctx.runSegments([mul(x(0), x(1))], [false, true], targets.map((t) => ({ inputs: [t, coef], outputs: [t] })));
}

/** In-place updates by name, as the engine's 'update' command names them. */
export const UPDATES: Record<string, (ctx: Ctx, tensors: WT[], attrs: any) => void> = {
  ...Object.fromEntries(Object.entries(RULES).map(([name, rule]) => [name, (ctx: Ctx, ts: WT[], attrs: OptimizerAttrs) => optimizerUpdate(ctx, rule, ts, attrs)])),
  scale,
};
