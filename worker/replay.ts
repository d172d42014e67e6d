// Imperative loops replay as step plans. A PyTorch-style loop sends the same
// step again and again (forward ops, backward, optimizer update), each time
// under fresh ids. The engine signs every command field by field (no string
// per command): the ids it refers to as made inside the step (by order of
// making), made by the step before (a hidden state carried under a new id:
// by that step's order), or older (as they are); and cuts the stream into
// steps after each optimizer update. When a step signs alike one of the last
// few (the one before, or, with two optimizers taking turns, the one before
// that), its signatures become a template: the next step whose commands
// match a template is held back until it is complete, run op by op into that
// template's step plan (worker/plan.ts), and later matching steps replay the
// plan instead of interpreting their commands. Anything that does not match
// (a new shape, attribute or learning rate, a read in the middle of a step,
// a `manualSeed`) runs the held commands op by op, as if nothing had been
// held; a held command that fails ends its own batch only, as op by op.
//
// What may differ between matching steps: the values of uploaded data (the
// plan uploads the new ones), a slice or select of a tensor made before the
// step at another position (a DataLoader-free `x.slice(0, s, s + batch)`: the
// plan copies the rows into a storage of its own and patches the copy's
// offset), a carried tensor's memory (the launches reading it are rebound),
// and random draws (later counters, as in fit). The step's outputs
// (activations, the loss, gradients) stay with the page as in op-by-op runs:
// the plan lends their storages to the page's tensors, and while the page
// still holds last step's (its garbage collector has not run yet) the plan
// replays into fresh storages, leaving the old ones to their holders.
//
// Off while anomaly detection is on; a device loss drops the plans (recorded
// again on the new device).

import type { Command } from '../lib/protocol.js';
import type { Storage, TypedArray } from './backend/backend.js';
import type { Kernel } from './backend/kernel.js';
import { x } from './backend/kernel.js';
import type { Ctx } from './ctx.js';
import type { TensorTable } from './liveness.js';
import { sameValues } from './fit-plans.js';
import { StepPlan } from './plan.js';
import { Buf, WT, type Pending } from './tensor.js';

export interface LoopHost {
  readonly ctx: Ctx;
  readonly tensors: TensorTable;
  /** Runs one command op by op (in its own scope, then liveness relief). */
  run(cmd: Command): void;
  /** A held command of an earlier batch failed: its error is that batch's, as if it had run then. */
  failed(e: unknown): void;
  /** Runs op `name` on resident tensors without recording it for autograd. */
  apply(name: string, inputs: WT[], attrs: any): WT;
  /** An optimizer step ran (host copies count them). */
  optimizerStepped(): void;
  /** Whether replay must stay off (anomaly detection checks each op's output). */
  readonly blocked: boolean;
}

/**
 * A command's signature, compared field by field (no string built per command). `refs` are the
 * ids it refers to: made in the step, -1 - their order of making; older, the id itself; a
 * gradient backward makes, NEW. `from` says, per ref, which id of the step before made it (its
 * order), or -1: steps match where they refer to the same older id or to what the same command
 * of their previous step made (a hidden state carried under a new id).
 */
interface Sig {
  kind: Command[0];
  name: string;
  flag: unknown;
  refs: number[];
  from: number[] | null;
  attrs: unknown;
  /** A slice or select of an older tensor, which may move between steps (compared without its position). */
  view: boolean;
}

const NEW = -0x7fffffff;

interface Template {
  sigs: Sig[];
  /** Commands whose view moves from step to step (compared without their position). */
  moving: Set<number>;
  /** Undefined until recorded. */
  plan?: LoopPlan;
}

/** A held command and the batch it came in (a failure skips the rest of its batch, as op by op). */
interface Held {
  cmd: Command;
  batch: number;
}

/** Memory the plan's tensors view: an export by its index in StepPlan.exports, or an older tensor's (by its place in olderIds). */
type Source = { export: number } | { external: number };

/**
 * A lazy result the step left (an elementwise op's output the page holds, never computed in the
 * step): remade at each replay over the replay's memory, so it stays as lazy as op by op.
 */
interface Lazy {
  pending: Omit<Pending, 'inputs'>;
  inputs: Source[];
}

/** How the plan's run left one id the step made: a view of memory, or of a lazy result. */
interface Made {
  id: number;
  source: Source | { lazy: number };
  shape: number[];
  strides: number[];
  offset: number;
  dtype: WT['dtype'];
  requiresGrad: boolean;
  /** The op of its (freed) autograd node, when it had one. */
  node: { op: string; attrs: any } | null;
}

/** What an older tensor the step reads was when the plan was recorded: a replay needs the same. */
interface Older {
  id: number;
  buf: Buf;
  /** The storage the plan's launches read for it now (another step's carried tensor moves them). */
  bound: Storage;
  shape: number[];
  strides: number[];
  offset: number;
  requiresGrad: boolean;
}

interface LoopPlan {
  plan: StepPlan;
  /** In olderIds order. */
  older: Older[];
  /** By the command index of each step command that makes an id. */
  made: Made[];
  lazies: Lazy[];
  /** Moving command index -> the shape and strides its rows copy reads. */
  moving: Map<number, { shape: number[]; strides: number[] }>;
}

const VIEW_OPS = new Set(['slice', 'select']);
/** Repeating steps looked for this far back (two optimizers alternate: period 2). */
const HISTORY = 4;
/** Templates kept at once, each with its plan; the oldest goes first. */
const MAX_TEMPLATES = 4;

const isStepEnd = (cmd: Command) => cmd[0] === 'update' && cmd[1] !== 'scale';

export class LoopReplay {
  on = true;
  readonly counts = { recorded: 0, replayed: 0, refused: 0, fallbacks: 0 };
  /** Ids made in the step being signed, by order of making; those the step before made. */
  private locals = new Map<number, number>();
  private previousLocals = new Map<number, number>();
  /** Signatures of the step running op by op; null once a command that never replays ran. */
  private current: Sig[] | null = [];
  /** The last steps' signatures, newest first. */
  private history: (Sig[] | null)[] = [];
  /** The last command was an optimizer update: the next other command starts a step. */
  private ending = false;
  private templates: Template[] = [];
  /** Templates whose steps could not be recorded: they run op by op. */
  private refused: Template[] = [];
  /** A step held back while it matches a template, with its signatures, and frees that arrived meanwhile. */
  private held: Held[] = [];
  private heldSigs: Sig[] = [];
  /** The templates the held commands still match. */
  private candidates: Template[] = [];
  /** Ids the held commands make or refer to. */
  private heldIds = new Set<number>();
  private frees: Command[] = [];
  /** The batch the command being pushed came in; -1 while draining (no batch arriving). */
  private batch = -1;

  constructor(private host: LoopHost) {}

  /** Takes the next command of the stream, from batch number `batch`. */
  push(cmd: Command, batch: number) {
    this.batch = batch;
    if (cmd[0] === 'free') {
      // A free is no step's part: it runs now, unless a held command refers to the id (then after them).
      // (Not all later: a gradient zeroGrad drops must be gone when backward runs, or backward adds to it.)
      const later = cmd[1].filter((id) => this.heldIds.has(id));
      const now = later.length ? cmd[1].filter((id) => !this.heldIds.has(id)) : cmd[1];
      if (later.length) this.frees.push(['free', later]);
      if (now.length) this.host.run(['free', now]);
      return;
    }
    if (this.ending && !isStepEnd(cmd)) this.endStep();
    const starting = !this.held.length && this.current?.length === 0 && this.templates.length && this.on && !this.host.blocked;
    if (starting) this.candidates = this.templates;
    if (this.held.length || starting) {
      const sig = this.sign(cmd);
      const i = this.held.length;
      const still = sig ? this.candidates.filter((t) => i < t.sigs.length && sameSig(sig, t.sigs[i], t.moving.has(i))) : [];
      if (still.length) {
        this.candidates = still;
        this.held.push({ cmd, batch });
        this.heldSigs.push(sig!);
        for (const id of idsOf(cmd)) this.heldIds.add(id);
        const complete = still.find((t) => t.sigs.length === i + 1);
        if (complete) this.runHeld(complete);
        return;
      }
      this.release();
      return this.opByOp(cmd, sig);
    }
    this.opByOp(cmd, this.sign(cmd));
  }

  /** Runs a held step op by op (a read, a sync or anything else that needs its results came first). */
  drain() {
    this.batch = -1;
    if (this.held.length) this.release();
  }

  /** Drops the plans and what was learnt (switched off); held commands run first. */
  reset() {
    this.drain();
    this.dropPlan();
    this.templates = [];
    this.history = [];
    this.refused = [];
  }

  /** Drops the plans (compiled on a device now lost): the next matching steps record them again. */
  dropPlan() {
    for (const t of this.templates) {
      t.plan?.plan.dispose();
      t.plan = undefined;
    }
  }

  /** The batch arriving failed (its remaining commands are skipped, as op by op): nothing of it is held. */
  abandon() {
    this.held = [];
    this.heldSigs = [];
    this.heldIds.clear();
    this.runFrees();
    this.current = null;
  }

  private opByOp(cmd: Command, sig: Sig | null) {
    if (sig && this.current) this.current.push(sig);
    else this.current = null;
    this.host.run(cmd);
    if (isStepEnd(cmd)) this.ending = true;
  }

  /** The held commands run op by op: their signatures start the current step. */
  private release() {
    const held = this.held;
    this.current = this.heldSigs;
    this.held = [];
    this.heldSigs = [];
    this.heldIds.clear();
    this.counts.fallbacks++;
    try {
      this.runEach(held, 0);
    } finally {
      this.runFrees();
    }
    if (held.length && isStepEnd(held[held.length - 1].cmd)) this.ending = true;
  }

  /**
   * Runs held commands op by op from `from`. As if each had run in its batch: a failure skips the
   * rest of that batch; an earlier batch's failure is reported as its own and later batches run
   * on; the arriving batch's is thrown (the engine skips the rest of it).
   */
  private runEach(held: Held[], from: number) {
    for (let i = from; i < held.length; i++) {
      try {
        this.host.run(held[i].cmd);
      } catch (e) {
        this.failedAt(held, i, e);
        const { batch } = held[i];
        while (i + 1 < held.length && held[i + 1].batch === batch) i++;
      }
    }
  }

  private failedAt(held: Held[], i: number, e: unknown) {
    this.current = null;
    if (held[i].batch === this.batch) throw e;
    this.host.failed(e);
  }

  private runFrees() {
    const frees = this.frees;
    this.frees = [];
    for (const f of frees) this.host.run(f);
  }

  /** A step ended: one alike an earlier one (the step before, or another optimizer's before that) makes a template. */
  private endStep() {
    const done = this.current;
    this.ending = false;
    this.current = [];
    [this.previousLocals, this.locals] = [this.locals, this.previousLocals];
    this.locals.clear();
    const history = this.history;
    this.history = [done, ...history.slice(0, HISTORY - 1)];
    if (!done || !this.on) return;
    for (const earlier of history) {
      const moving = earlier && alike(done, earlier);
      if (!moving) continue;
      const known = (t: Template) => sameTemplate(t, done, moving);
      if (this.templates.some(known) || this.refused.some(known)) return;
      if (this.templates.length >= MAX_TEMPLATES) this.templates.shift()!.plan?.plan.dispose();
      this.templates = [...this.templates, { sigs: done, moving }];
      return;
    }
  }

  /** The command's signature (see Sig); null for one that never replays. */
  private sign(cmd: Command): Sig | null {
    const { locals, previousLocals } = this;
    let from: number[] | null = null;
    const refs: number[] = [];
    const ref = (id: number) => {
      const local = locals.get(id);
      const carried = local === undefined ? previousLocals.get(id) : undefined;
      if (carried !== undefined) {
        from ??= [];
        while (from.length < refs.length) from.push(-1);
        from.push(carried);
      }
      refs.push(local !== undefined ? -1 - local : id);
    };
    const make = (id: number) => locals.set(id, locals.size);
    const sig = (kind: Command[0], name: string, flag: unknown, attrs: unknown, view = false): Sig => {
      if (from) while (from.length < refs.length) from.push(-1);
      return { kind, name, flag, refs, from, attrs, view };
    };
    switch (cmd[0]) {
      case 'op': {
        const [, name, out, ins, attrs, requiresGrad] = cmd;
        for (const id of ins) ref(id);
        const view = VIEW_OPS.has(name) && !requiresGrad && ins.length === 1 && refs[0] >= 0;
        make(out);
        return sig('op', name, requiresGrad, attrs, view);
      }
      case 'data': {
        const [, id, , shape, dtype, requiresGrad] = cmd;
        make(id);
        return sig('data', dtype, requiresGrad, shape);
      }
      case 'detach':
        ref(cmd[2]);
        make(cmd[1]);
        return sig('detach', '', null, null);
      case 'requiresGrad':
        if (!locals.has(cmd[1])) return null;
        ref(cmd[1]);
        return sig('requiresGrad', '', cmd[2], null);
      case 'assign':
        ref(cmd[1]);
        ref(cmd[2]);
        return sig('assign', '', null, null);
      case 'update':
        for (const id of cmd[2]) ref(id);
        return sig('update', cmd[1], null, cmd[3]);
      case 'backward': {
        const [, root, seed, leaves] = cmd;
        ref(root);
        if (seed) ref(seed);
        else refs.push(0);
        for (const [leaf, grad] of leaves) {
          ref(leaf);
          if (locals.has(grad) || this.host.tensors.has(grad)) ref(grad);
          else {
            make(grad);
            refs.push(NEW);
          }
        }
        return sig('backward', '', null, null);
      }
      default:
        // seed, anomaly: the step they are in never replays.
        return null;
    }
  }

  /** A complete step matching `template`: replayed, or recorded into its plan the first time. */
  private runHeld(template: Template) {
    const held = this.held;
    const cmds = held.map((h) => h.cmd);
    this.held = [];
    this.heldSigs = [];
    this.heldIds.clear();
    this.current = [];
    try {
      if (template.plan && this.replay(template.plan, cmds)) this.counts.replayed++;
      else if (template.plan) {
        this.counts.fallbacks++;
        this.runEach(held, 0);
      } else {
        const failed = this.record(template, cmds);
        if (failed) {
          this.failedAt(held, failed.at, failed.error);
          let i = failed.at;
          while (i + 1 < held.length && held[i + 1].batch === held[failed.at].batch) i++;
          this.runEach(held, i + 1);
        }
      }
    } finally {
      this.runFrees();
    }
    this.current = null; // the template's signatures, not worth signing again
    this.ending = true;
  }

  /** Ids the step makes, in signing order, by the command that makes each. */
  private madeIds(cmds: Command[]): number[] {
    const ids: number[] = [];
    for (const cmd of cmds) {
      if (cmd[0] === 'op') ids.push(cmd[2]);
      else if (cmd[0] === 'data' || cmd[0] === 'detach') ids.push(cmd[1]);
    }
    return ids;
  }

  /** Older ids the step refers to, in order of first reference. */
  private olderIds(cmds: Command[]): number[] {
    const made = new Set<number>();
    const older = new Set<number>();
    const see = (id: number) => { if (!made.has(id)) older.add(id); };
    for (const cmd of cmds) {
      switch (cmd[0]) {
        case 'op': cmd[3].forEach(see); made.add(cmd[2]); break;
        case 'data': made.add(cmd[1]); break;
        case 'detach': see(cmd[2]); made.add(cmd[1]); break;
        case 'requiresGrad': see(cmd[1]); break;
        case 'assign': see(cmd[1]); see(cmd[2]); break;
        case 'update': cmd[2].forEach(see); break;
        case 'backward':
          see(cmd[1]);
          if (cmd[2]) see(cmd[2]);
          for (const [leaf, grad] of cmd[3]) {
            see(leaf);
            if (made.has(grad) || !this.host.tensors.has(grad)) made.add(grad);
            else older.add(grad);
          }
          break;
      }
    }
    return [...older];
  }

  /**
   * Runs the step op by op into `template`'s plan (refused when it cannot replay). A command that
   * fails ends the recording: returns its index and error (the step's later commands not run).
   */
  private record(template: Template, cmds: Command[]): { at: number; error: unknown } | null {
    const { ctx, tensors } = this.host;
    const older: Older[] = this.olderIds(cmds).map((id) => {
      const t = tensors.get(id);
      return { id, buf: t.buf, bound: t.buf.storage, shape: t.shape, strides: t.strides, offset: t.offset, requiresGrad: t.requiresGrad };
    });
    let why: string | null = null;
    // The lazy results the page holds at the end stay lazy (remade at each replay).
    const keepLazy = () => {
      const held = new Set<Buf>();
      const resident = new Map(tensors.resident());
      for (const id of [...this.madeIds(cmds), ...this.gradIds(cmds, older)]) {
        const t = resident.get(id);
        if (t?.buf.pending) held.add(t.buf);
      }
      return (b: Buf) => held.has(b);
    };
    let running = 0;
    let plan: StepPlan | null;
    try {
      plan = StepPlan.record(ctx, (tag) => {
        cmds.forEach((cmd, i) => {
          tag(i);
          running = i;
          this.host.run(cmd);
          if (!template.moving.has(i) || cmd[0] !== 'op') return;
          // The rows go into memory of the step's own, so that only this copy's offset moves between steps.
          ctx.scoped(() => {
            const view = tensors.get(cmd[2]);
            const copy = ctx.empty(view.shape, view.dtype);
            ctx.mapInto([x(0)], [view], [copy]);
            tensors.set(cmd[2], copy);
          });
        });
        tag(undefined);
      }, { exports: true, keepLazy });
    } catch (error) {
      this.refuse(template);
      return { at: running, error };
    }
    const made: Made[] = [];
    const lazies: Lazy[] = [];
    const moving = new Map<number, { shape: number[]; strides: number[] }>();
    if (plan) {
      const exports = plan.exports;
      const byBuf = new Map<Buf, number>();
      older.forEach((o, i) => { if (!byBuf.has(o.buf)) byBuf.set(o.buf, i); });
      const resident = new Map(tensors.resident());
      // How many holders each Buf should have: the step's tensors, and its lazy results' inputs.
      const holders = new Map<Buf, number>();
      const hold = (b: Buf) => holders.set(b, (holders.get(b) ?? 0) + 1);
      const sourceOf = (b: Buf): Source | null => {
        const external = byBuf.get(b);
        if (external !== undefined) return { external };
        const index = b.pending ? -1 : exports.indexOf(b.storage);
        return index >= 0 ? { export: index } : null;
      };
      const lazyIndex = new Map<Buf, number>();
      for (const id of this.madeIds(cmds).concat(this.gradIds(cmds, older))) {
        const t = resident.get(id);
        if (!t) { why = 'a tensor the step made was evicted'; break; }
        if (t.node && !t.node.freed) { why = 'an autograd graph outlives the step'; break; }
        hold(t.buf);
        let source: Made['source'] | null;
        const p = t.buf.pending;
        if (p) {
          if (!lazyIndex.has(t.buf)) {
            const inputs = p.inputs.map(sourceOf);
            if (inputs.some((s) => !s)) { why = 'a lazy result of the step reads memory the step does not own'; break; }
            p.inputs.forEach(hold);
            const { inputs: _, ...rest } = p;
            lazyIndex.set(t.buf, lazies.push({ pending: { ...rest }, inputs: inputs as Source[] }) - 1);
          }
          source = { lazy: lazyIndex.get(t.buf)! };
        } else source = sourceOf(t.buf);
        if (!source) { why = 'a tensor the step made shares memory the step does not own'; break; }
        made.push({ id, source, shape: t.shape, strides: t.strides, offset: t.offset, dtype: t.dtype, requiresGrad: t.requiresGrad, node: t.node ? { op: t.node.op, attrs: t.node.attrs } : null });
      }
      // Every export is held by the step's tensors alone (not by a graph or anything else).
      if (!why && [...exports].some((s) => ![...holders].some(([b, n]) => !b.pending && b.storage === s && b.refs === n))) why = 'memory the step made is held by something other than its tensors';
      if (!why && [...lazyIndex.keys()].some((b) => b.refs !== holders.get(b))) why = 'a lazy result of the step is held by something other than its tensors';
      for (const i of template.moving) {
        const launches = plan.launchesTagged(i);
        if (launches.length !== 1 || launches[0].kind !== 'map' || launches[0].inputs.length !== 1) { why = 'a moving view is not one copy'; break; }
        moving.set(i, { shape: launches[0].inputs[0].shape, strides: launches[0].inputs[0].strides });
      }
    } else why = 'the step cannot be recorded';
    if (!plan || why) {
      plan?.dispose();
      this.refuse(template);
      return null;
    }
    // Made ids are indexed by the command that makes them, in order: keep that order.
    template.plan = { plan, older, made, lazies, moving };
    this.counts.recorded++;
    return null;
  }

  /** A template whose steps cannot be recorded: its steps run op by op from now on. */
  private refuse(template: Template) {
    this.templates = this.templates.filter((t) => t !== template);
    this.refused = [template, ...this.refused.slice(0, MAX_TEMPLATES - 1)];
    this.counts.refused++;
  }

  /** Gradient ids the step's backward commands make. */
  private gradIds(cmds: Command[], older: Older[]): number[] {
    const olderIds = new Set(older.map((o) => o.id));
    const ids: number[] = [];
    for (const cmd of cmds) if (cmd[0] === 'backward') for (const [, grad] of cmd[3]) if (!olderIds.has(grad) && !ids.includes(grad)) ids.push(grad);
    return ids;
  }

  /** The step through its plan; false (nothing done) when what it reads is not what the plan was recorded on. */
  private replay({ plan, older, made, lazies, moving }: LoopPlan, cmds: Command[]): boolean {
    const { ctx, tensors } = this.host;
    const olderIds = this.olderIds(cmds);
    if (olderIds.length !== older.length) return false;
    // A tensor carried from the step before (a new id at the same place) moves the launches reading it onto its memory.
    const carried = new Map<Storage, Storage>();
    for (let i = 0; i < older.length; i++) {
      const id = olderIds[i];
      const o = older[i];
      if (!tensors.has(id)) return false;
      const t = tensors.get(id);
      // Computed now, as recording computes everything lazy first.
      if (id !== o.id && t.buf.pending) void t.storage;
      if (t.buf.pending || t.offset !== o.offset || t.requiresGrad !== o.requiresGrad || !same(t.shape, o.shape) || !same(t.strides, o.strides)) return false;
      if (id === o.id) {
        if (t.buf !== o.buf) return false;
        continue;
      }
      const s = t.buf.storage;
      if (s.size !== o.bound.size || s.dtype !== o.bound.dtype || (carried.get(o.bound) ?? s) !== s) return false;
      if (s !== o.bound) carried.set(o.bound, s);
    }
    // The moving views at this step's positions.
    const offsets = new Map<number, number>();
    for (const [i, want] of moving) {
      const cmd = cmds[i] as Extract<Command, { 0: 'op' }>;
      const ok = ctx.scoped(() => {
        const view = this.host.apply(cmd[1], [tensors.get(cmd[3][0])], cmd[4]);
        offsets.set(i, view.offset);
        return view.buf === tensors.get(cmd[3][0]).buf && same(view.shape, want.shape) && same(view.strides, want.strides);
      });
      if (!ok) return false;
    }
    // As op by op, the table learns what is written (StepPlan.replay computes lazy results reading it first).
    const isOlder = (id: number) => olderIds.includes(id);
    for (const cmd of cmds) {
      if (cmd[0] === 'update') for (const id of cmd[2]) if (isOlder(id)) tensors.willWrite(tensors.get(id));
      if (cmd[0] === 'assign' && isOlder(cmd[1])) tensors.willWrite(tensors.get(cmd[1]));
      if (cmd[0] === 'backward') for (const [, grad] of cmd[3]) if (isOlder(grad)) tensors.willWrite(tensors.get(grad));
    }
    plan.renewLent(carried);
    older.forEach((o, i) => {
      o.id = olderIds[i];
      o.buf = tensors.get(o.id).buf;
      o.bound = o.buf.storage;
    });
    plan.replay(
      ctx,
      (tag, k): Kernel | undefined => (offsets.has(tag) && k.kind === 'map' ? { ...k, inputs: [{ ...k.inputs[0], offset: offsets.get(tag)! }] } : undefined),
      (tag): TypedArray | undefined => { const cmd = cmds[tag]; return cmd[0] === 'data' ? cmd[2] : undefined; },
    );
    // The page's ids for what the step made, over the memory the plan just wrote.
    const bufs = new Map<Storage, Buf>();
    const bufOf = (source: Source): Buf => {
      if ('external' in source) return tensors.get(olderIds[source.external]).buf;
      const current = plan.exports[source.export];
      let buf = bufs.get(current);
      if (!buf) {
        bufs.set(current, (buf = new Buf(current, plan.lender)));
        plan.lend(current);
      }
      return buf;
    };
    // Lazy results remade over those Bufs (held here until the step's tensors hold them).
    const lazyBufs = lazies.map(({ pending: p, inputs }) => ctx.scoped(() => {
      const views = inputs.map((s, j) => new WT(bufOf(s), p.views[j].shape, p.views[j].strides, p.views[j].offset, p.dtypes[j]).retain());
      const out = ctx.map(p.expr, views, p.shape, p.dtype);
      for (const v of views) v.release();
      out.buf.pending!.uses = p.uses;
      out.buf.retain();
      return out.buf;
    }));
    const ids = [...this.madeIds(cmds), ...this.gradIds(cmds, older)];
    made.forEach((m, i) => {
      const buf = 'lazy' in m.source ? lazyBufs[m.source.lazy] : bufOf(m.source);
      const t = new WT(buf, m.shape, m.strides, m.offset, m.dtype);
      t.requiresGrad = m.requiresGrad;
      if (m.node) t.node = { op: m.node.op, inputs: [], attrs: m.node.attrs, freed: true };
      tensors.set(ids[i], t);
    });
    for (const b of lazyBufs) b.release();
    for (const cmd of cmds) {
      if (cmd[0] === 'update' && cmd[1] !== 'scale') this.host.optimizerStepped();
      if (cmd[0] === 'backward') {
        for (const [leaf, grad] of cmd[3]) {
          if (isOlder(grad)) continue;
          tensors.get(leaf).gradId = grad;
          tensors.willWrite(tensors.get(grad));
        }
      }
      if (cmd[0] === 'requiresGrad' && cmd[2]) tensors.willWrite(tensors.get(cmd[1]));
    }
    tensors.relieve();
    return true;
  }
}

/** Whether two signatures match (`loose`: a view compared without its position). */
function sameSig(a: Sig, b: Sig, loose: boolean): boolean {
  if (a.kind !== b.kind || a.name !== b.name || a.flag !== b.flag || a.view !== b.view || a.refs.length !== b.refs.length) return false;
  for (let j = 0; j < a.refs.length; j++) {
    if (a.refs[j] === b.refs[j]) continue;
    const from = a.from?.[j] ?? -1;
    if (from < 0 || from !== (b.from?.[j] ?? -1)) return false;
  }
  return loose && a.view ? sameView(a.attrs, b.attrs) : sameValues(a.attrs, b.attrs);
}

/** Slice or select attributes alike but for where the view starts. */
function sameView(a: any, b: any): boolean {
  const { start: s1 = 0, end: e1, index: i1, ...r1 } = a ?? {};
  const { start: s2 = 0, end: e2, index: i2, ...r2 } = b ?? {};
  return (e1 === undefined) === (e2 === undefined) && (e1 === undefined || e1 - s1 === e2 - s2) && (i1 === undefined) === (i2 === undefined) && sameValues(r1, r2);
}

/** Two steps alike: the commands whose views moved, or null. */
function alike(a: Sig[], b: Sig[]): Set<number> | null {
  if (a.length !== b.length) return null;
  const moving = new Set<number>();
  for (let i = 0; i < a.length; i++) {
    if (sameSig(a[i], b[i], false)) continue;
    if (!a[i].view || !sameSig(a[i], b[i], true)) return null;
    moving.add(i);
  }
  return moving;
}

function sameTemplate(t: Template, sigs: Sig[], moving: Set<number>): boolean {
  return t.sigs.length === sigs.length && t.moving.size === moving.size && [...moving].every((i) => t.moving.has(i)) && sigs.every((s, i) => sameSig(s, t.sigs[i], moving.has(i)));
}

/** Every id a command makes or refers to. */
function idsOf(cmd: Command): number[] {
  switch (cmd[0]) {
    case 'op': return [cmd[2], ...cmd[3]];
    case 'data': return [cmd[1]];
    case 'detach': case 'assign': return [cmd[1], cmd[2]];
    case 'requiresGrad': return [cmd[1]];
    case 'update': return cmd[2];
    case 'backward': return [cmd[1], cmd[2], ...cmd[3].flat()];
    default: return [];
  }
}

function same(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
