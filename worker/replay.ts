// Imperative loops replay as step plans. A PyTorch-style loop sends the same
// step again and again (forward ops, backward, optimizer update), each time
// under fresh ids. The engine signs every command with the ids it refers to
// renamed (ids made inside the step by their order, older ones as they are),
// and cuts the stream into steps after each optimizer update. When two steps
// in a row sign alike, that signature becomes the template: the next step
// whose commands match it is held back until it is complete, run op by op
// into a step plan (worker/plan.ts), and later matching steps replay the plan
// instead of interpreting their commands. Anything that does not match (a new
// shape, attribute or learning rate, a read in the middle of a step, a
// `manualSeed`) runs the held commands op by op, as if nothing had been held.
//
// What may differ between matching steps: the values of uploaded data (the
// plan uploads the new ones), a slice or select of a tensor made before the
// step at another position (a DataLoader-free `x.slice(0, s, s + batch)`: the
// plan copies the rows into a storage of its own and patches the copy's
// offset), and random draws (later counters, as in fit). The step's outputs
// (activations, the loss, gradients) stay with the page as in op-by-op runs:
// the plan lends their storages to the page's tensors, and while the page
// still holds last step's (its garbage collector has not run yet) the plan
// replays into fresh storages, leaving the old ones to their holders.
//
// Off while anomaly detection is on; a device loss drops the plan (recorded
// again on the new device).

import type { Command } from '../lib/protocol.js';
import type { Storage, TypedArray } from './backend/backend.js';
import type { Kernel } from './backend/kernel.js';
import { x } from './backend/kernel.js';
import type { Ctx } from './ctx.js';
import type { TensorTable } from './liveness.js';
import { StepPlan } from './plan.js';
import { Buf, WT, type Pending } from './tensor.js';

export interface LoopHost {
  readonly ctx: Ctx;
  readonly tensors: TensorTable;
  /** Runs one command op by op (in its own scope, then liveness relief). */
  run(cmd: Command): void;
  /** Runs op `name` on resident tensors without recording it for autograd. */
  apply(name: string, inputs: WT[], attrs: any): WT;
  /** An optimizer step ran (host copies count them). */
  optimizerStepped(): void;
  /** Whether replay must stay off (anomaly detection checks each op's output). */
  readonly blocked: boolean;
}

/** A command's signature: exact, and for a view of an older tensor that may move between steps, without its position. */
interface Sig {
  exact: string;
  loose: string | null;
}

interface Template {
  sigs: Sig[];
  /** Commands whose view moves from step to step (their loose signatures match). */
  moving: Set<number>;
  key: string;
}

/** Memory the plan's tensors view: an export by its index in StepPlan.exports, or an older id's. */
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
  buf: Buf;
  shape: number[];
  strides: number[];
  offset: number;
  requiresGrad: boolean;
}

interface LoopPlan {
  plan: StepPlan;
  older: Map<number, Older>;
  /** By the command index of each step command that makes an id. */
  made: Made[];
  lazies: Lazy[];
  /** Moving command index -> the shape and strides its rows copy reads. */
  moving: Map<number, { shape: number[]; strides: number[] }>;
}

const VIEW_OPS = new Set(['slice', 'select']);

const isStepEnd = (cmd: Command) => cmd[0] === 'update' && cmd[1] !== 'scale';

export class LoopReplay {
  on = true;
  readonly counts = { recorded: 0, replayed: 0, refused: 0, fallbacks: 0 };
  /** Ids made in the step being signed, by order of making. */
  private locals = new Map<number, number>();
  /** Signatures of the step running op by op; null once a command that never replays ran. */
  private current: Sig[] | null = [];
  private previous: Sig[] | null = null;
  /** The last command was an optimizer update: the next other command starts a step. */
  private ending = false;
  private template: Template | null = null;
  /** The template's plan; undefined until recorded. */
  private plan: LoopPlan | undefined;
  /** Templates whose steps could not be recorded: they run op by op. */
  private refused = new Set<string>();
  /** A step held back while it matches the template, with its signatures, and frees that arrived meanwhile. */
  private held: Command[] = [];
  private heldSigs: Sig[] = [];
  /** Ids the held commands make or refer to. */
  private heldIds = new Set<number>();
  private frees: Command[] = [];

  constructor(private host: LoopHost) {}

  /** Takes the next command of the stream. */
  push(cmd: Command) {
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
    if (this.held.length || (this.current?.length === 0 && this.template && this.on && !this.host.blocked)) {
      const sig = this.sign(cmd);
      const want = this.template!.sigs[this.held.length];
      if (sig && (sig.exact === want.exact || (this.template!.moving.has(this.held.length) && sig.loose === want.loose))) {
        this.held.push(cmd);
        this.heldSigs.push(sig);
        for (const id of idsOf(cmd)) this.heldIds.add(id);
        if (this.held.length === this.template!.sigs.length) this.runHeld();
        return;
      }
      this.release();
      return this.opByOp(cmd, sig);
    }
    this.opByOp(cmd, this.sign(cmd));
  }

  /** Runs a held step op by op (a read, a sync or anything else that needs its results came first). */
  drain() {
    if (this.held.length) this.release();
  }

  /** Drops the plan and what was learnt (switched off); held commands run first. */
  reset() {
    this.drain();
    this.dropPlan();
    this.template = null;
    this.previous = null;
    this.refused.clear();
  }

  /** Drops the plan (compiled on a device now lost): the next matching step records it again. */
  dropPlan() {
    this.plan?.plan.dispose();
    this.plan = undefined;
  }

  /** Forgets a held step after a failure (the batch's remaining commands are skipped, as op by op). */
  abandon() {
    this.held = [];
    this.heldSigs = [];
    this.heldIds.clear();
    const frees = this.frees;
    this.frees = [];
    for (const f of frees) this.host.run(f);
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
      for (const cmd of held) this.host.run(cmd);
    } finally {
      this.runFrees();
    }
    if (held.length && isStepEnd(held[held.length - 1])) this.ending = true;
  }

  private runFrees() {
    const frees = this.frees;
    this.frees = [];
    for (const f of frees) this.host.run(f);
  }

  /** A step ended: two alike in a row make a template. */
  private endStep() {
    const done = this.current;
    this.ending = false;
    this.current = [];
    this.locals.clear();
    const previous = this.previous;
    this.previous = done;
    if (!done || !previous || done.length !== previous.length || !this.on) return;
    const moving = new Set<number>();
    for (let i = 0; i < done.length; i++) {
      if (done[i].exact === previous[i].exact) continue;
      if (done[i].loose === null || done[i].loose !== previous[i].loose) return;
      moving.add(i);
    }
    const key = done.map((s, i) => (moving.has(i) ? s.loose : s.exact)).join('\n');
    if (key === this.template?.key || this.refused.has(key)) return;
    this.plan?.plan.dispose();
    this.plan = undefined;
    this.template = { sigs: done, moving, key };
  }

  /** The command with the ids it refers to renamed (see the header); null for one that never replays. */
  private sign(cmd: Command): Sig | null {
    const { locals } = this;
    const ref = (id: number) => (locals.has(id) ? `L${locals.get(id)}` : `E${id}`);
    const make = (id: number) => locals.set(id, locals.size);
    switch (cmd[0]) {
      case 'op': {
        const [, name, out, ins, attrs, requiresGrad] = cmd;
        const head = `op ${name} ${ins.map(ref).join(',')} ${requiresGrad}`;
        const older = ins.length === 1 && !locals.has(ins[0]);
        make(out);
        const exact = `${head} ${JSON.stringify(attrs)}`;
        if (!VIEW_OPS.has(name) || requiresGrad || !older) return { exact, loose: null };
        // Same view but for where it starts.
        const { start = 0, end, index, ...rest } = attrs ?? {};
        return { exact, loose: `${head} ${JSON.stringify(rest)} ${end === undefined ? '' : end - start}${index === undefined ? '' : ' select'}` };
      }
      case 'data': {
        const [, id, , shape, dtype, requiresGrad] = cmd;
        make(id);
        return { exact: `data ${shape} ${dtype} ${requiresGrad}`, loose: null };
      }
      case 'detach': {
        const s = `detach ${ref(cmd[2])}`;
        make(cmd[1]);
        return { exact: s, loose: null };
      }
      case 'requiresGrad':
        return locals.has(cmd[1]) ? { exact: `requiresGrad ${ref(cmd[1])} ${cmd[2]}`, loose: null } : null;
      case 'assign':
        return { exact: `assign ${ref(cmd[1])} ${ref(cmd[2])}`, loose: null };
      case 'update':
        return { exact: `update ${cmd[1]} ${cmd[2].map(ref).join(',')} ${JSON.stringify(cmd[3])}`, loose: null };
      case 'backward': {
        const [, root, seed, leaves] = cmd;
        const grads = leaves.map(([leaf, grad]) => {
          if (locals.has(grad)) return `${ref(leaf)}:${ref(grad)}`;
          if (this.host.tensors.has(grad)) return `${ref(leaf)}:E${grad}`;
          make(grad);
          return `${ref(leaf)}:new`;
        });
        return { exact: `backward ${ref(root)} ${seed ? ref(seed) : 0} ${grads.join(',')}`, loose: null };
      }
      default:
        // seed, anomaly: the step they are in never replays.
        return null;
    }
  }

  /** A complete step matching the template: replayed, or recorded into the plan the first time. */
  private runHeld() {
    const cmds = this.held;
    this.held = [];
    this.heldSigs = [];
    this.heldIds.clear();
    this.current = [];
    try {
      if (this.plan && this.replay(this.plan, cmds)) this.counts.replayed++;
      else if (this.plan) {
        this.counts.fallbacks++;
        for (const cmd of cmds) this.host.run(cmd);
      } else this.record(cmds);
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

  /** Older ids the step refers to (its signatures' E names). */
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

  private record(cmds: Command[]) {
    const { ctx, tensors } = this.host;
    const template = this.template!;
    const older = new Map<number, Older>();
    for (const id of this.olderIds(cmds)) {
      const t = tensors.get(id);
      older.set(id, { buf: t.buf, shape: t.shape, strides: t.strides, offset: t.offset, requiresGrad: t.requiresGrad });
    }
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
    const plan = StepPlan.record(ctx, (tag) => {
      cmds.forEach((cmd, i) => {
        tag(i);
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
    const made: Made[] = [];
    const lazies: Lazy[] = [];
    const moving = new Map<number, { shape: number[]; strides: number[] }>();
    if (plan) {
      const exports = plan.exports;
      const byBuf = new Map([...older].map(([id, o]) => [o.buf, id]));
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
      this.refused.add(template.key);
      this.template = null;
      this.counts.refused++;
      return;
    }
    // Made ids are indexed by the command that makes them, in order: keep that order.
    this.plan = { plan, older, made, lazies, moving };
    this.counts.recorded++;
  }

  /** Gradient ids the step's backward commands make. */
  private gradIds(cmds: Command[], older: Map<number, Older>): number[] {
    const ids: number[] = [];
    for (const cmd of cmds) if (cmd[0] === 'backward') for (const [, grad] of cmd[3]) if (!older.has(grad) && !ids.includes(grad)) ids.push(grad);
    return ids;
  }

  /** The step through its plan; false (nothing done) when what it reads is not what the plan was recorded on. */
  private replay({ plan, older, made, lazies, moving }: LoopPlan, cmds: Command[]): boolean {
    const { ctx, tensors } = this.host;
    const olderIds = this.olderIds(cmds);
    if (olderIds.length !== older.size) return false;
    for (const id of olderIds) {
      const o = older.get(id);
      if (!o || !tensors.has(id)) return false;
      const t = tensors.get(id);
      if (t.buf !== o.buf || t.buf.pending || t.offset !== o.offset || t.requiresGrad !== o.requiresGrad || !same(t.shape, o.shape) || !same(t.strides, o.strides)) return false;
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
    for (const cmd of cmds) {
      if (cmd[0] === 'update') for (const id of cmd[2]) if (older.has(id)) tensors.willWrite(tensors.get(id));
      if (cmd[0] === 'assign' && older.has(cmd[1])) tensors.willWrite(tensors.get(cmd[1]));
      if (cmd[0] === 'backward') for (const [, grad] of cmd[3]) if (older.has(grad)) tensors.willWrite(tensors.get(grad));
    }
    plan.renewLent();
    plan.replay(
      ctx,
      (tag, k): Kernel | undefined => (offsets.has(tag) && k.kind === 'map' ? { ...k, inputs: [{ ...k.inputs[0], offset: offsets.get(tag)! }] } : undefined),
      (tag): TypedArray | undefined => { const cmd = cmds[tag]; return cmd[0] === 'data' ? cmd[2] : undefined; },
    );
    // The page's ids for what the step made, over the memory the plan just wrote.
    const bufs = new Map<Storage, Buf>();
    const bufOf = (source: Source): Buf => {
      if ('external' in source) return tensors.get(source.external).buf;
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
          if (older.has(grad)) continue;
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
