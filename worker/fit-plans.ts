// Fit's step plans kept between fit calls. User code that calls fit once per
// epoch, or twice in a row, sends the same step again under fresh ids; a fit's
// sweep states (plans, sums, batch count) are kept when it ends, and the next
// sweep whose programs are alike takes one: the same commands with the ids a
// program makes renamed by order, the same older ids (weights, optimizer
// state) over the same memory. A recompile or a replaced weight changes those,
// so nothing stale replays (a weight written in place keeps its memory: the
// plan reads its new values); an entry whose older ids are gone is dropped, and
// a device loss drops them all.

import type { Command, ProgramSpec } from '../lib/protocol.js';
import type { DType } from '../lib/shape.js';
import type { Storage } from './backend/backend.js';
import type { Buf } from './tensor.js';

/** Entries kept at once (a model's training and validation sweeps, for a couple of models); the oldest goes first. */
const MAX_KEPT = 4;

export interface KeptSweep<S> {
  /** The programs the state's plans were recorded from, by batch size. */
  programs: Record<number, ProgramSpec>;
  state: S;
  /** The older ids the programs read and the memory they held. */
  older: Map<number, Buf | undefined>;
  /** The data the plans' rows copies read (let go of: a resumed state moves onto the next fit's). */
  data: { shape: number[]; strides: number[]; dtype: DType; storage: Storage }[];
  dispose(): void;
}

export class KeptSweeps<S> {
  private entries: KeptSweep<S>[] = [];

  /** Keeps `entry` for a later fit (see the header). */
  keep(entry: KeptSweep<S>) {
    this.entries.unshift(entry);
    while (this.entries.length > MAX_KEPT) this.entries.pop()!.dispose();
  }

  /** The kept entry for `programs`, taken out; entries whose older ids are gone are dropped on the way. */
  take(programs: Record<number, ProgramSpec>, bufOf: (id: number) => Buf | undefined): KeptSweep<S> | undefined {
    const live = (e: KeptSweep<S>) => [...e.older].every(([id, buf]) => bufOf(id) === buf);
    for (const e of this.entries.filter((e) => !live(e))) e.dispose();
    this.entries = this.entries.filter(live);
    const i = this.entries.findIndex((e) => alikePrograms(e.programs, programs));
    return i < 0 ? undefined : this.entries.splice(i, 1)[0];
  }

  clear() {
    for (const e of this.entries) e.dispose();
    this.entries = [];
  }
}

/** Ids the program makes (its inputs, and what its commands create). */
function madeIds(p: ProgramSpec): Set<number> {
  const made = new Set(p.inputs);
  for (const cmd of p.commands) {
    if (cmd[0] === 'op') made.add(cmd[2]);
    else if (cmd[0] === 'data' || cmd[0] === 'detach') made.add(cmd[1]);
    else if (cmd[0] === 'backward') for (const [, grad] of cmd[3]) made.add(grad);
  }
  return made;
}

/** Older ids the programs read (weights, optimizer state). */
export function olderIds(programs: Record<number, ProgramSpec>): number[] {
  const older = new Set<number>();
  for (const p of Object.values(programs)) {
    const made = madeIds(p);
    for (const cmd of p.commands) for (const id of idsOf(cmd)) if (!made.has(id)) older.add(id);
  }
  return [...older];
}

/** Every id in a command, in a fixed order, and the rest of it. */
function split(cmd: Command): { ids: number[]; rest: unknown[] } {
  switch (cmd[0]) {
    case 'op': return { ids: [cmd[2], ...cmd[3]], rest: [cmd[1], cmd[4], cmd[5], cmd[3].length] };
    case 'data': return { ids: [cmd[1]], rest: [cmd[2], cmd[3], cmd[4], cmd[5]] };
    case 'free': return { ids: cmd[1], rest: [cmd[1].length] };
    case 'detach': case 'assign': return { ids: [cmd[1], cmd[2]], rest: [] };
    case 'requiresGrad': return { ids: [cmd[1]], rest: [cmd[2]] };
    case 'update': return { ids: cmd[2], rest: [cmd[1], cmd[3], cmd[2].length] };
    case 'backward': return { ids: [cmd[1], ...(cmd[2] ? [cmd[2]] : []), ...cmd[3].flat()], rest: [!!cmd[2], cmd[3].length] };
    default: return { ids: [], rest: cmd.slice(1) };
  }
}

const idsOf = (cmd: Command) => split(cmd).ids;

function alikePrograms(a: Record<number, ProgramSpec>, b: Record<number, ProgramSpec>): boolean {
  const sizes = Object.keys(a);
  return sizes.length === Object.keys(b).length && sizes.every((size) => b[+size] !== undefined && sameProgram(a[+size], b[+size]));
}

/** The same commands, with the ids each program makes renamed by order of appearance and older ids the same. */
export function sameProgram(a: ProgramSpec, b: ProgramSpec): boolean {
  if (a.commands.length !== b.commands.length || a.inputs.length !== b.inputs.length || a.outputs.length !== b.outputs.length) return false;
  const namer = (p: ProgramSpec) => {
    const made = madeIds(p);
    const order = new Map<number, number>();
    return (id: number) => {
      if (!made.has(id)) return id;
      if (!order.has(id)) order.set(id, order.size);
      return -1 - order.get(id)!;
    };
  };
  const na = namer(a);
  const nb = namer(b);
  const sameIds = (x: number[], y: number[]) => x.length === y.length && x.every((id, i) => na(id) === nb(y[i]));
  if (!sameIds(a.inputs, b.inputs)) return false;
  for (let i = 0; i < a.commands.length; i++) {
    const x = a.commands[i];
    const y = b.commands[i];
    if (x[0] !== y[0]) return false;
    const sx = split(x);
    const sy = split(y);
    if (!sameIds(sx.ids, sy.ids) || !sameValues(sx.rest, sy.rest)) return false;
  }
  return sameIds(a.outputs, b.outputs);
}

/** Structural equality of attributes and data (Object.is on leaves: -0 and 0 differ, as in a kernel). */
export function sameValues(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || ArrayBuffer.isView(a)) {
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameValues(x[i], y[i])) return false;
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (!sameValues((a as any)[k], (b as any)[k])) return false;
  return true;
}
