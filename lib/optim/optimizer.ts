// The optimizer base: parameter groups with per-group options, lazily created
// per-parameter state, and a step() that queues ONE 'update' command for all
// parameters with a gradient. The state lives on the device (worker/ops/optim.ts)
// as views of flat state tensors: each group's hyper-parameters (written only
// when an option changes: a scheduler, `paramGroups[i].lr = ...`), each
// parameter's step count, step-dependent scalars and moments. So every step
// sends the same command, a recorded step (Keras fit) replays unchanged, and
// the worker updates every parameter in one multi-tensor kernel (the flat
// state is one binding, not one per tensor).

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { full, noGrad, Tensor, tensor, zeros } from '../tensor.js';
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

/** What the worker's rule keeps for each parameter of a group (see worker/ops/optim.ts Rule). */
export interface ParamLayout {
  flags: UpdateFlags;
  /**
   * The step count: in the state as PyTorch keeps it ('state'), kept out of it because PyTorch's
   * rule has none ('hidden': SGD's momentum tells its first step so), or none.
   */
  step: 'state' | 'hidden' | null;
  /** How many step-dependent scalars the rule computes per parameter (hidden state). */
  scalars: number;
  /** State tensors, parameter-shaped, in the order the rule reads them. */
  keys: string[];
  /** Value new state tensors start at (Adagrad's initial accumulator); 0 by default. */
  fill?: number;
}

/** A group's hyper-parameters on the device, and the values last written there. */
interface DeviceHyper {
  tensor: Tensor;
  names: string[];
  values: number[];
}

/** A view to carve out of a new flat state tensor, its starting value and where it goes. */
interface StateRequest {
  shape: number[];
  init: Tensor | number;
  place(view: Tensor): void;
}

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();
  /** Name of the rule in worker/ops/optim.ts. */
  protected abstract readonly rule: string;
  private readonly deviceHyper = new WeakMap<ParamGroup<O>, DeviceHyper>();
  /** Per parameter, state the rule keeps that PyTorch's state dict does not: step-dependent scalars, SGD's step count. */
  private readonly hidden = new Map<Tensor, { step?: Tensor; scalars?: Tensor }>();
  /** Tensors that are views of a flat state tensor; others (a loaded state dict's) move into one at the next step. */
  private readonly flat = new WeakSet<Tensor>();
  /** The groups' layouts when Keras fit recorded its step (materializeState), to refuse changes it would not see. */
  private recordedLayouts: string | null = null;

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

  /** What the rule keeps for each parameter of a group with these options. */
  protected abstract layout(group: O): ParamLayout;

  /** The group's numbers the worker's rule reads, in double precision (none may depend on the step). */
  protected abstract hyperParameters(group: O): Record<string, number>;

  /**
   * Creates the state these parameters' next update reads and the hyper-parameters of their
   * groups, as views of ONE new flat tensor (none when nothing is missing). State that is
   * not such a view yet (a loaded state dict's, a step count given as a number) is copied into it.
   */
  private ensureState(entries: [ParamGroup<O>, Tensor][]) {
    const requests: StateRequest[] = [];
    const ready = (t: Tensor | number | undefined): boolean => t instanceof Tensor && this.flat.has(t);
    for (const group of new Set(entries.map(([g]) => g))) {
      if (this.deviceHyper.has(group)) continue;
      const named = this.hyperParameters(group);
      const values = Object.values(named);
      requests.push({
        shape: [values.length], init: tensor(Float32Array.from(values), [values.length]),
        place: (view) => this.deviceHyper.set(group, { tensor: view, names: Object.keys(named), values }),
      });
    }
    for (const [group, p] of entries) {
      let state = this.state.get(p);
      if (!state) this.state.set(p, (state = {}));
      let hidden = this.hidden.get(p);
      if (!hidden) this.hidden.set(p, (hidden = {}));
      const { step, scalars, keys, fill = 0 } = this.layout(group);
      const own = state;
      const where = hidden;
      if (step === 'state' && !ready(own.step)) {
        const old = own.step;
        requests.push({ shape: [], init: old instanceof Tensor ? old.float().reshape([]) : old ?? 0, place: (v) => (own.step = v) });
      }
      // SGD's hidden count starts at 1 when its buffer exists already (a loaded state dict): no first step then.
      if (step === 'hidden' && !ready(where.step)) requests.push({ shape: [], init: keys.every((k) => own[k] instanceof Tensor) ? 1 : 0, place: (v) => (where.step = v) });
      if (scalars && !(where.scalars && where.scalars.size === scalars)) requests.push({ shape: [scalars], init: 0, place: (v) => (where.scalars = v) });
      for (const key of keys) {
        const old = own[key];
        if (ready(old)) continue;
        requests.push({ shape: [...p.shape], init: old instanceof Tensor ? old : fill, place: (v) => (own[key] = v) });
      }
    }
    if (!requests.length) return;
    noGrad(() => {
      const sizes = requests.map((r) => r.shape.reduce((a, b) => a * b, 1));
      const flat = zeros([sizes.reduce((a, b) => a + b, 0)]);
      let offset = 0;
      requests.forEach((r, i) => {
        const slice = flat.slice(0, offset, offset + sizes[i]);
        const view = r.shape.length === 1 ? slice : slice.reshape(r.shape);
        offset += sizes[i];
        if (r.init instanceof Tensor) view.copy_(r.init);
        else if (r.init !== 0) view.fill_(r.init);
        this.flat.add(view);
        r.place(view);
      });
      flat.dispose();
    });
  }

  /** The structural part of every group's layout (which state tensors exist): what a recorded step depends on. */
  private layouts(): string {
    return JSON.stringify(this.paramGroups.map((g) => {
      const { flags, step, scalars, keys } = this.layout(g);
      return [flags, step, scalars, keys];
    }));
  }

  /**
   * @internal Keras fit records one step and the worker replays it: this creates every
   * parameter's state and every group's device hyper-parameters before the recording, so
   * the recorded step only reads and updates them.
   */
  materializeState() {
    this.ensureState(this.paramGroups.flatMap((g) => g.params.map((p): [ParamGroup<O>, Tensor] => [g, p])));
    this.recordedLayouts = this.layouts();
  }

  /**
   * @internal Writes changed options (a scheduler's or a callback's new lr, a new weightDecay)
   * into the groups' device hyper-parameters: a command, no readback. step() does it; Keras fit
   * after callbacks. During a fit, an option that changes which state the rule keeps (amsgrad,
   * momentum turned on or off, centered) cannot reach the recorded step: that throws.
   */
  syncHyperParameters() {
    if (this.recordedLayouts !== null && this.layouts() !== this.recordedLayouts) {
      throw new Error(`${this.constructor.name}: an option that changes the optimizer's state (amsgrad, momentum on or off, centered) changed during fit, which recorded its step with the old one; set it before fit (learning rate, weight decay, betas, nesterov and maximize may change)`);
    }
    for (const g of this.paramGroups) if (this.deviceHyper.has(g)) this.hyperOnDevice(g);
  }

  /** The group's device hyper-parameters (made by ensureState), brought up to date. */
  private hyperOnDevice(group: ParamGroup<O>): DeviceHyper {
    const named = this.hyperParameters(group);
    const values = Object.values(named);
    const known = this.deviceHyper.get(group)!;
    if (known.values.every((v, i) => Object.is(v, values[i]))) return known;
    // In place, never a new tensor: a recorded step refers to this one by id. (The names are the rule's, fixed.)
    noGrad(() => known.tensor.copy_(tensor(Float32Array.from(values), [values.length])));
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
    const entries: [ParamGroup<O>, Tensor][] = [];
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (!g) continue;
        p.check();
        g.check();
        if (fmt(g.shape) !== fmt(p.shape)) throw new ShapeError(`${this.constructor.name}.step: gradient shape ${fmt(g.shape)} does not match parameter shape ${fmt(p.shape)}`);
        entries.push([group, p]);
      }
    }
    if (!entries.length) return;
    this.ensureState(entries);
    const hyperIds: number[] = [];
    const groups: string[][] = [];
    const index = new Map<ParamGroup<O>, number>();
    const ids: number[] = [];
    const slots: UpdateSlot[] = [];
    for (const [group, p] of entries) {
      if (!index.has(group)) {
        const hyper = this.hyperOnDevice(group);
        index.set(group, hyperIds.push(hyper.tensor.id) - 1);
        groups.push(hyper.names);
      }
      const { flags, step, scalars, keys } = this.layout(group);
      const state = this.state.get(p)!;
      const hidden = this.hidden.get(p)!;
      const count = step === 'state' ? (state.step as Tensor) : step === 'hidden' ? hidden.step! : null;
      ids.push(p.id, p.grad!.id, ...(count ? [count.id] : []), ...(scalars ? [hidden.scalars!.id] : []), ...keys.map((k) => (state[k] as Tensor).id));
      slots.push({ flags, group: index.get(group)! });
    }
    runtime().enqueue(['update', this.rule, [...hyperIds, ...ids], { groups, slots }]);
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
    this.hidden.clear();
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
