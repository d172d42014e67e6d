// The engine's table of page tensors, and how it frees memory without
// waiting for the page's garbage collector.
//
// The page frees a handle only when its garbage collector finalizes it, which
// may be gigabytes later: `x.mul(i).add(1).sum().item()` in a loop leaves two
// tensors of x's size per turn that nobody can name, yet the worker cannot
// tell them from ones the page still holds. So when the bytes held by
// *consumed* tensors (already used as an op's input, the typical temporary)
// grow past the rest of the live set (and a floor), the oldest of them are
// evicted: their memory is freed and the op that made them is kept, so a
// later read or use recomputes them from their inputs. Only what can be
// recomputed exactly is evicted: outputs of deterministic ops (no random
// draws) whose inputs are themselves recomputable or are roots (uploaded
// data, random draws) that no in-place write has touched since. A root
// written in place later (optimizer step, `copy_`) first brings back every
// evicted tensor that reads it. Tensors that depend on trained parameters
// or gradients are never evicted (the optimizer would bring them straight
// back), nor are tensors an autograd graph still holds. A lazy result (an
// elementwise recipe not yet computed, see worker/ctx.ts) holds no memory of
// its own: it counts for nothing until it is computed, and is never evicted.

import { bytesPerElement } from './backend/backend.js';
import type { Buf, WT } from './tensor.js';

/** How an entry was made: enough to make it again. */
interface Recipe {
  op: string;
  attrs: unknown;
  inputs: Entry[];
  /** Each input's Buf.version when the op ran: a root input must still be at it to recompute. */
  versions: number[];
}

interface Entry {
  /** The tensor while resident; null while evicted. */
  wt: WT | null;
  /** Null when it cannot be recomputed (data, random draws, written in place). */
  recipe: Recipe | null;
  /** The Buf.version the entry was made at: a later in-place write makes it a root. */
  version: number;
  /** Whether the page still holds its id (an entry the page dropped lives on while evicted entries need it). */
  named: boolean;
  /** Evicted entries whose recompute reads this one. */
  dependents: Set<Entry>;
  /** Bytes of its memory once computed. */
  bytes: number;
  /** What it counts for in idleBytes while idle: its bytes if computed, 0 while lazy. */
  counted: number;
}

/** Below this many bytes of consumed tensors nothing is evicted. */
const IDLE_FLOOR_BYTES = 32 * 2 ** 20;

export class TensorTable {
  private entries = new Map<number, Entry>();
  /** Resident, recomputable entries that were used as an op input, least recently used first. */
  private idle = new Set<Entry>();
  /** Memory the idle entries hold (lazy ones hold none). */
  private idleBytes = 0;
  /** Evicted entries whose recompute reads a resident input on this Buf: an in-place write brings them back first. */
  private readers = new WeakMap<Buf, Set<Entry>>();
  /** Resident entries by storage: views share one, and are evicted together or not at all. */
  private holders = new WeakMap<Buf, Set<Entry>>();

  /**
   * @param compute runs op `name` on resident inputs (not recorded for autograd); the caller owns the result
   * @param liveBytes device bytes in use, pooled memory not counted
   */
  constructor(private compute: (op: string, inputs: WT[], attrs: any) => WT, private liveBytes: () => number) {}

  /** Tensors the page holds. */
  get size() { return this.entries.size; }

  /** Of those, the ones evicted (their memory freed, recomputed when used). */
  get evicted() {
    let n = 0;
    for (const e of this.entries.values()) if (!e.wt) n++;
    return n;
  }

  has(id: number) { return this.entries.has(id); }

  /** Ids and tensors of the resident entries (an evicted one has no tensor until it is used again). */
  *resident(): IterableIterator<[number, WT]> {
    for (const [id, e] of this.entries) if (e.wt) yield [id, e.wt];
  }

  /** The tensor of `id`, recomputed first if it was evicted. */
  get(id: number): WT {
    const e = this.entries.get(id);
    if (!e) throw new Error(`tensor #${id} does not exist in the worker (disposed, or its batch failed)`);
    return this.materialize(e);
  }

  /** get() for an op's input: marks it consumed, which makes it a candidate for eviction. */
  use(id: number): WT {
    const wt = this.get(id);
    const e = this.entries.get(id)!;
    if (this.recomputable(e)) {
      this.unidle(e);
      e.counted = wt.buf.pending ? 0 : e.bytes;
      this.idle.add(e);
      this.idleBytes += e.counted;
    }
    return wt;
  }

  /** A lazy storage was computed (Ctx.materialise): idle entries on it now hold memory. */
  computed(buf: Buf) {
    for (const e of this.holders.get(buf) ?? []) {
      if (!this.idle.has(e) || e.counted) continue;
      e.counted = e.bytes;
      this.idleBytes += e.bytes;
    }
  }

  private unidle(e: Entry) {
    if (this.idle.delete(e)) this.idleBytes -= e.counted;
  }

  /**
   * Gives `id` the tensor `wt` (retained). `made` is the op that computed it from
   * the page tensors `inIds` when it can be recomputed (deterministic op).
   */
  set(id: number, wt: WT, made?: { op: string; attrs: unknown; inIds: number[] }) {
    this.free(id);
    let recipe: Recipe | null = null;
    // What requires grad belongs to an autograd graph (and was made from trainable leaves): never recomputed.
    if (made && !wt.requiresGrad) {
      const inputs = made.inIds.map((i) => this.entries.get(i)!);
      // An input that is neither recomputable nor a stable root (trained parameters, gradients, written buffers) makes the output a root.
      const stable = (e: Entry) => this.recomputable(e) || (!!e.wt && e.wt.buf.version === 0 && !e.wt.requiresGrad);
      if (inputs.every((e) => e && e.wt && stable(e))) {
        recipe = { op: made.op, attrs: made.attrs, inputs, versions: inputs.map((e) => e.wt!.buf.version) };
      }
    }
    const e: Entry = { wt: wt.retain(), recipe, version: wt.buf.version, named: true, dependents: new Set(), bytes: wt.size * bytesPerElement(wt.dtype), counted: 0 };
    this.entries.set(id, e);
    this.setOf(this.holders, wt.buf).add(e);
  }

  /** The page dropped `id`. */
  free(id: number) {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    e.named = false;
    this.drop(e);
  }

  /**
   * Call before writing `wt`'s storage in place, and for tensors that will be written
   * (trainable leaves, gradients): what reads its old values is recomputed now, and
   * nothing computed from it later is recomputable.
   */
  willWrite(wt: WT) {
    const readers = this.readers.get(wt.buf);
    if (readers) {
      this.readers.delete(wt.buf);
      for (const r of readers) this.materialize(r);
    }
    wt.buf.version++;
  }

  /** Evicts the least recently used consumed tensors while they hold more than the rest of the live set. */
  relieve() {
    if (this.idleBytes <= IDLE_FLOOR_BYTES) return;
    const limit = Math.max(IDLE_FLOOR_BYTES, this.liveBytes() - this.idleBytes);
    if (this.idleBytes <= limit) return;
    for (const e of this.idle) {
      if (this.idleBytes <= limit / 2) break;
      // Evicting a lazy result would free nothing and make its next use compute it.
      if (!e.counted) continue;
      this.unidle(e);
      this.evict(e);
    }
  }

  private recomputable(e: Entry) {
    return !!e.recipe && (!e.wt || e.wt.buf.version === e.version);
  }

  /**
   * Evicts e with every other view of its storage: a write through a view left resident
   * would have to reach the evicted ones, which recomputing cannot do. Lazy results the page
   * holds whose recipes read the storage would keep it: they are evicted with it (they hold no
   * memory of their own, and are made again from it), or it stays.
   */
  private evict(e: Entry) {
    const buf = e.wt!.buf;
    const group = this.holders.get(buf);
    if (!group) return;
    const lazy: [Buf, Set<Entry>][] = [];
    let pins = 0;
    for (const r of buf.readers) {
      const held = this.holders.get(r);
      if (!held || !this.wholly(r, held)) return;
      lazy.push([r, held]);
      pins += r.pending!.inputs.filter((b) => b === buf).length;
    }
    // Every other handle on the storage is a table entry (not a graph node, a fit, a scope) that can be recomputed.
    if (!this.wholly(buf, group, pins)) return;
    for (const [r, held] of lazy) this.evictGroup(r, held);
    this.evictGroup(buf, group);
  }

  /** Whether the table's entries `group` are all of buf's holders (but `pins` lazy recipes) and can be recomputed. */
  private wholly(buf: Buf, group: Set<Entry>, pins = 0) {
    return group.size + pins === buf.refs && [...group].every((g) => this.evictable(g));
  }

  private evictGroup(buf: Buf, group: Set<Entry>) {
    for (const g of [...group]) {
      for (const input of g.recipe!.inputs) {
        input.dependents.add(g);
        if (input.wt && input.wt.buf !== buf) this.setOf(this.readers, input.wt.buf).add(g);
      }
      this.unidle(g);
      g.wt!.release();
      g.wt = null;
    }
    this.holders.delete(buf);
  }

  /** Recomputable, held by the table alone, and its inputs still hold the values it was made from. */
  private evictable(e: Entry) {
    if (e.wt!.refs !== 1 || !this.recomputable(e)) return false;
    const { inputs, versions } = e.recipe!;
    return inputs.every((input, i) => (!input.wt ? !!input.recipe : input.recipe ? this.recomputable(input) : input.wt.buf.version === versions[i]));
  }

  private setOf(map: WeakMap<Buf, Set<Entry>>, buf: Buf) {
    let set = map.get(buf);
    if (!set) map.set(buf, (set = new Set()));
    return set;
  }

  /** Makes e resident again, recomputing evicted inputs first (iteratively: chains can be long). */
  private materialize(target: Entry): WT {
    const stack = [target];
    while (stack.length) {
      const e = stack[stack.length - 1];
      if (e.wt) {
        stack.pop();
        continue;
      }
      const recipe = e.recipe!;
      const missing = recipe.inputs.filter((i) => !i.wt);
      if (missing.length) {
        stack.push(...missing);
        continue;
      }
      stack.pop();
      const wt = this.compute(recipe.op, recipe.inputs.map((i) => i.wt!), recipe.attrs);
      e.wt = wt;
      e.version = wt.buf.version;
      this.setOf(this.holders, wt.buf).add(e);
      // Its evicted dependents now read it here: a write to it must bring them back first.
      for (const d of e.dependents) this.setOf(this.readers, wt.buf).add(d);
      // Resident again, it no longer needs its inputs; those the page dropped may go.
      for (const input of recipe.inputs) {
        input.dependents.delete(e);
        this.readers.get(input.wt!.buf)?.delete(e);
        this.drop(input);
      }
    }
    return target.wt!;
  }

  /** Lets go of an entry nothing names or needs any more, and then of what it needed. */
  private drop(first: Entry) {
    const stack = [first];
    while (stack.length) {
      const e = stack.pop()!;
      if (e.named || e.dependents.size) continue;
      this.unidle(e);
      if (e.wt) {
        this.holders.get(e.wt.buf)?.delete(e);
        e.wt.release();
        e.wt = null;
      } else if (e.recipe) {
        for (const input of e.recipe.inputs) {
          input.dependents.delete(e);
          if (input.wt) this.readers.get(input.wt.buf)?.delete(e);
          stack.push(input);
        }
      }
      e.recipe = null;
    }
  }
}
