// The optimizer base: parameter groups with per-group options, lazily created
// per-parameter state, and a step() that queues ONE 'update' command for all
// parameters with a gradient. The worker runs one fused kernel per parameter
// (worker/ops/optim.ts); numbers that change from step to step (bias
// corrections, a scheduler's lr) are computed here in double precision from
// the step count, which is deterministic, and travel as scalars.

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { noGrad, Tensor, zerosLike } from '../tensor.js';
import { describe } from '../validate.js';
import type { UpdateFlags, UpdateSlot } from '../../worker/ops/optim.js';

/** A parameter group: its parameters plus every option, filled in from the optimizer's defaults. */
export type ParamGroup<O> = O & {
  params: Tensor[];
  /** Set by the first learning-rate scheduler attached to the optimizer (PyTorch's initial_lr). */
  initialLr?: number;
};

/** Parameters, or groups of parameters with their own options: [{ params: a, lr: 0.1 }, { params: b }]. */
export type Params<O> = Iterable<Tensor> | Iterable<Partial<O> & { params: Iterable<Tensor> | Tensor }>;

/** Per-parameter state: step counts as numbers, moments as Tensors. */
export type ParamState = Record<string, Tensor | number>;

/** Like PyTorch's: state by parameter index (counted across groups in order), and the groups' options with params as indices. */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  param_groups: Record<string, unknown>[];
}

/** What one parameter's update needs besides the parameter and its gradient. */
export interface ParamUpdate {
  flags: UpdateFlags;
  scalars: Record<string, number>;
  /** State tensors in the order the worker's rule reads them. */
  state: Tensor[];
}

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();
  /** Name of the rule in worker/ops/optim.ts. */
  protected abstract readonly rule: string;

  constructor(params: Params<O>, readonly defaults: Partial<O>) {
    if (params instanceof Tensor) throw new TypeError(`${this.constructor.name}: params must be an iterable of Tensors or of parameter groups, got a single Tensor`);
    const list = [...params];
    if (!list.length) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    type GroupInput = Partial<O> & { params: Iterable<Tensor> | Tensor };
    const bad = list.find((p) => !(p instanceof Tensor) && !(p && typeof p === 'object' && 'params' in p));
    if (bad !== undefined) throw new TypeError(`${this.constructor.name}: params must be an iterable of Tensors or of parameter groups, got ${describe(bad)}`);
    const groups = list[0] instanceof Tensor ? [{ params: list } as unknown as GroupInput] : (list as GroupInput[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group; options it leaves out come from the defaults. */
  addParamGroup(group: Partial<O> & { params: Iterable<Tensor> | Tensor }) {
    const params = group.params instanceof Tensor ? [group.params] : [...group.params];
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError(`${this.constructor.name}: can only optimize Tensors, got ${typeof p}`);
      if (!p.isLeaf) throw new Error(`${this.constructor.name}: can't optimize a non-leaf Tensor (${p})`);
      if (p.dtype !== 'float32') throw new Error(`${this.constructor.name}: can only optimize float32 Tensors, got ${p}`);
    }
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => seen.has(p)) || new Set(params).size !== params.length) {
      throw new Error(`${this.constructor.name}: some parameters appear in more than one parameter group`);
    }
    const options = { ...this.defaults, ...group, params } as ParamGroup<O>;
    if (options.lr === undefined) throw new Error(`${this.constructor.name}: parameter group didn't specify a value of required optimization parameter lr`);
    this.validate(options);
    this.paramGroups.push(options);
  }

  /** Throws on options PyTorch rejects. */
  protected abstract validate(options: O): void;

  /** Creates missing state and says how to update one parameter; `state` is this parameter's entry. */
  protected abstract prepare(group: O, state: ParamState, param: Tensor): ParamUpdate;

  /** A zero-filled state tensor, created at the parameter's first step (PyTorch's zeros_like). */
  protected buffer(state: ParamState, key: string, param: Tensor): Tensor {
    const t = state[key];
    if (t instanceof Tensor) return t;
    return (state[key] = zerosLike(param));
  }

  /**
   * @internal Keras fit records one step and the worker replays it: this creates every
   * parameter's state before the recording, without counting a step.
   */
  materializeState() {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        let state = this.state.get(p);
        if (!state) this.state.set(p, (state = {}));
        const step = state.step;
        this.prepare(group, state, p);
        if (step === undefined) delete state.step;
        else state.step = step;
      }
    }
  }

  /** @internal Adds steps the worker ran from a recorded step (Keras fit) to the step counts. */
  advanceSteps(n: number) {
    for (const s of this.state.values()) if (typeof s.step === 'number') s.step += n;
  }

  /** Drops every gradient (PyTorch's set_to_none). */
  zeroGrad() {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** Updates every parameter that has a gradient, in the worker; parameters without one are skipped. */
  step() {
    const ids: number[] = [];
    const slots: UpdateSlot[] = [];
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (!g) continue;
        p.check();
        g.check();
        if (fmt(g.shape) !== fmt(p.shape)) throw new ShapeError(`${this.constructor.name}.step: gradient shape ${fmt(g.shape)} does not match parameter shape ${fmt(p.shape)}`);
        let state = this.state.get(p);
        if (!state) this.state.set(p, (state = {}));
        const u = this.prepare(group, state, p);
        ids.push(p.id, g.id, ...u.state.map((t) => t.id));
        slots.push({ flags: u.flags, scalars: u.scalars });
      }
    }
    if (slots.length) runtime().enqueue(['update', this.rule, ids, { slots }]);
  }

  /** State (live views of the state tensors, as PyTorch returns references) and group options. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const param_groups = this.paramGroups.map(({ params, ...options }) => ({
      ...structuredClone(options),
      params: params.map((p) => {
        index.set(p, index.size);
        return index.size - 1;
      }),
    }));
    const state: Record<number, ParamState> = {};
    for (const [p, s] of [...this.state].sort((a, b) => index.get(a[0])! - index.get(b[0])!)) {
      state[index.get(p)!] = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v instanceof Tensor ? v.detach() : v]));
    }
    return { state, param_groups };
  }

  /** Restores state and group options from stateDict(); state tensors are copied, so the source stays untouched. */
  loadStateDict(sd: OptimizerStateDict) {
    const name = this.constructor.name;
    if (sd.param_groups.length !== this.paramGroups.length) {
      throw new Error(`${name}.loadStateDict: the state dict has ${sd.param_groups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    sd.param_groups.forEach((g, i) => {
      const n = (g.params as number[]).length;
      if (n !== this.paramGroups[i].params.length) {
        throw new Error(`${name}.loadStateDict: parameter group ${i} has ${n} parameters in the state dict, ${this.paramGroups[i].params.length} in the optimizer`);
      }
    });
    const params = this.paramGroups.flatMap((g) => g.params);
    // Check everything before changing anything, so a bad state dict leaves the optimizer as it was.
    for (const [i, s] of Object.entries(sd.state)) {
      const p = params[Number(i)];
      if (!p) throw new Error(`${name}.loadStateDict: state for parameter ${i}, but the optimizer has ${params.length} parameters`);
      for (const [k, v] of Object.entries(s)) {
        if (v instanceof Tensor && fmt(v.shape) !== fmt(p.shape)) throw new ShapeError(`${name}.loadStateDict: state '${k}' of parameter ${i} has shape ${fmt(v.shape)}, the parameter ${fmt(p.shape)}`);
      }
    }
    sd.param_groups.forEach(({ params: _, ...options }, i) => Object.assign(this.paramGroups[i], structuredClone(options)));
    this.state.clear();
    noGrad(() => {
      for (const [i, s] of Object.entries(sd.state)) {
        this.state.set(params[Number(i)], Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v instanceof Tensor ? (v.dtype === 'float32' ? v.clone() : v.float()) : v])));
      }
    });
  }
}
