// The optimizer base: parameter groups with per-group options, lazily created
// per-parameter state, and a step() that queues ONE 'update' command for all
// parameters with a gradient. The state lives on the device (worker/ops/optim.ts):
// step counts are 0-d tensors the worker counts up, and each group's
// hyper-parameters are a small tensor written only when an option changes
// (a scheduler, `paramGroups[i].lr = ...`), so every step sends the same
// command and a recorded step (Keras fit) replays unchanged.

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { full, noGrad, Tensor, tensor, zerosLike } from '../tensor.js';
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

/** Per-parameter state: the step count (a 0-d Tensor, as in PyTorch 1.13) and moments as Tensors. */
export type ParamState = Record<string, Tensor | number>;

/** Like PyTorch's: state by parameter index (counted across groups in order), and the groups' options with params as indices. */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  param_groups: Record<string, unknown>[];
}

/** What one parameter's update needs besides the parameter, its gradient and its group's hyper-parameters. */
export interface ParamUpdate {
  flags: UpdateFlags;
  /** State tensors in the order the worker's rule reads them (the step count first, for rules that keep one). */
  state: Tensor[];
}

/** A group's hyper-parameters on the device, and the values last written there. */
interface DeviceHyper {
  tensor: Tensor;
  names: string[];
  values: number[];
}

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();
  /** Name of the rule in worker/ops/optim.ts. */
  protected abstract readonly rule: string;
  private readonly deviceHyper = new WeakMap<ParamGroup<O>, DeviceHyper>();

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

  /** The group's numbers the worker's rule reads, in double precision (none may depend on the step). */
  protected abstract hyperParameters(group: O): Record<string, number>;

  /** The step count, created at the parameter's first step (PyTorch's tensor(0.)); a number from an old checkpoint becomes one. */
  protected stepCount(state: ParamState): Tensor {
    const t = state.step;
    if (t instanceof Tensor) return t;
    return (state.step = full([], typeof t === 'number' ? t : 0));
  }

  /** A zero-filled state tensor, created at the parameter's first step (PyTorch's zeros_like). */
  protected buffer(state: ParamState, key: string, param: Tensor): Tensor {
    const t = state[key];
    if (t instanceof Tensor) return t;
    return (state[key] = zerosLike(param));
  }

  /**
   * @internal Keras fit records one step and the worker replays it: this creates every
   * parameter's state and every group's device hyper-parameters before the recording, so
   * the recorded step only reads and updates them.
   */
  materializeState() {
    for (const group of this.paramGroups) {
      this.hyperOnDevice(group);
      for (const p of group.params) {
        let state = this.state.get(p);
        if (!state) this.state.set(p, (state = {}));
        this.prepare(group, state, p);
      }
    }
  }

  /**
   * @internal Writes changed options (a scheduler's or a callback's new lr) into the groups'
   * device hyper-parameters: a command, no readback. step() does it; Keras fit after callbacks.
   */
  syncHyperParameters() {
    for (const g of this.paramGroups) if (this.deviceHyper.has(g)) this.hyperOnDevice(g);
  }

  /** The group's device hyper-parameters, created or brought up to date. */
  private hyperOnDevice(group: ParamGroup<O>): DeviceHyper {
    const named = this.hyperParameters(group);
    const values = Object.values(named);
    const known = this.deviceHyper.get(group);
    if (known && known.values.every((v, i) => Object.is(v, values[i]))) return known;
    const fresh = noGrad(() => tensor(Float32Array.from(values), [values.length]));
    if (!known) {
      const created = { tensor: fresh, names: Object.keys(named), values };
      this.deviceHyper.set(group, created);
      return created;
    }
    // In place, never a new tensor: a recorded step refers to this one by id. (The names are the rule's, fixed.)
    noGrad(() => known.tensor.copy_(fresh));
    known.values = values;
    return known;
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
    const hyperIds: number[] = [];
    const groups: string[][] = [];
    const ids: number[] = [];
    const slots: UpdateSlot[] = [];
    for (const group of this.paramGroups) {
      let index = -1;
      for (const p of group.params) {
        const g = p.grad;
        if (!g) continue;
        p.check();
        g.check();
        if (fmt(g.shape) !== fmt(p.shape)) throw new ShapeError(`${this.constructor.name}.step: gradient shape ${fmt(g.shape)} does not match parameter shape ${fmt(p.shape)}`);
        let state = this.state.get(p);
        if (!state) this.state.set(p, (state = {}));
        if (index < 0) {
          const hyper = this.hyperOnDevice(group);
          index = hyperIds.push(hyper.tensor.id) - 1;
          groups.push(hyper.names);
        }
        const u = this.prepare(group, state, p);
        ids.push(p.id, g.id, ...u.state.map((t) => t.id));
        slots.push({ flags: u.flags, group: index });
      }
    }
    if (slots.length) runtime().enqueue(['update', this.rule, [...hyperIds, ...ids], { groups, slots }]);
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
        if (k === 'step') {
          // A 0-d tensor (PyTorch 1.13), a [1] one (its capturable Adam) or a number (older checkpoints).
          if (v instanceof Tensor ? v.size !== 1 : !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
            throw new TypeError(`${name}.loadStateDict: state 'step' of parameter ${i} must be a count (a number or a one-element Tensor), got ${describe(v)}`);
          }
        } else if (v instanceof Tensor && fmt(v.shape) !== fmt(p.shape)) throw new ShapeError(`${name}.loadStateDict: state '${k}' of parameter ${i} has shape ${fmt(v.shape)}, the parameter ${fmt(p.shape)}`);
      }
    }
    sd.param_groups.forEach(({ params: _, ...options }, i) => Object.assign(this.paramGroups[i], structuredClone(options)));
    this.state.clear();
    noGrad(() => {
      for (const [i, s] of Object.entries(sd.state)) {
        const copy = (k: string, v: Tensor | number) => {
          if (k === 'step') return v instanceof Tensor ? v.float().reshape([]).clone() : full([], v);
          return v instanceof Tensor ? (v.dtype === 'float32' ? v.clone() : v.float()) : v;
        };
        this.state.set(params[Number(i)], Object.fromEntries(Object.entries(s).map(([k, v]) => [k, copy(k, v)])));
      }
    });
  }
}
