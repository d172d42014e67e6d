// Checkpoints (IndexedDB in browsers, files under Node) and safetensors, page side. The page only names
// tensors: the worker reads their buffers, encodes and stores them, and on
// load creates the tensors itself; here we give them handles. A saved value is
// any JSON-like tree with Tensors in it (a module is saved as its state dict,
// an optimizer as its stateDict()); in the stored JSON each tensor becomes a
// reference to its entry in the checkpoint's safetensors blob, keyed by its
// path ('model.fc1.weight', 'optimizer.state.0.exp_avg'), so a saved state
// dict keeps PyTorch's names.

import * as Comlink from 'comlink';
import { runtime } from './context.js';
import { Tensor } from './tensor.js';
import { Module, type StateDict } from './nn/module.js';
import { Optimizer } from './optim/optimizer.js';
import type { CheckpointInfo } from '../worker/checkpoint-store.js';

export type { CheckpointInfo };

const SCHEME = 'indexeddb://';
/** Marks a tensor reference in the stored JSON: { [REF]: key in the safetensors blob }. */
const REF = '__shadenet_tensor__';
const FORMAT = 'shadenet-checkpoint';

export interface SaveOptions {
  /**
   * @internal TEST HOOK: the save fails like a full disk (QuotaExceededError) once it has
   * written this many bytes, so tests can show the previous checkpoint survives.
   */
  simulateQuotaAfterBytes?: number;
}

/** Set by the Node entry: there, checkpoints are files (file:// URLs or paths) and IndexedDB is missing. */
let fileCheckpoints = false;

/** @internal Called by the Node entry. */
export function useFileCheckpoints() {
  fileCheckpoints = true;
}

/** A file:// URL or a plain path, passed on as given: the worker resolves it (same working directory). */
function fileLocation(url: string, what: string): string {
  if (typeof url === 'string' && url.startsWith(SCHEME)) {
    throw new TypeError(`${what}: there is no IndexedDB in Node; give a file:// URL or a path instead of ${JSON.stringify(url)}`);
  }
  if (typeof url !== 'string' || !url || (/^[a-z][a-z\d+.-]*:\/\//i.test(url) && !url.startsWith('file://'))) {
    throw new TypeError(`${what}: expected a file:// URL or a path, got ${JSON.stringify(url)}`);
  }
  return url;
}

/** The checkpoint name in 'indexeddb://name' (under Node: the file:// URL or path); any other scheme is rejected. */
export function checkpointName(url: string, what: string): string {
  if (fileCheckpoints) return fileLocation(url, what);
  if (typeof url !== 'string' || !url.startsWith(SCHEME) || url.length === SCHEME.length) {
    throw new TypeError(`${what}: expected a URL of the form 'indexeddb://name' (the only storage supported), got ${JSON.stringify(url)}`);
  }
  return url.slice(SCHEME.length);
}

/** checkpoints.* take a bare name or an 'indexeddb://' URL (under Node: a file:// URL or a path). */
function nameOf(nameOrUrl: string, what: string): string {
  if (fileCheckpoints) return fileLocation(nameOrUrl, what);
  if (typeof nameOrUrl === 'string' && nameOrUrl.includes('://')) return checkpointName(nameOrUrl, what);
  if (typeof nameOrUrl !== 'string' || !nameOrUrl) throw new TypeError(`${what}: expected a checkpoint name, got ${JSON.stringify(nameOrUrl)}`);
  return nameOrUrl;
}

const isPlain = (v: object) => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Replaces each Tensor in `value` by a reference, collecting [key, tensor]; modules and optimizers become their state dicts. */
function toStored(value: unknown, entries: [string, Tensor][], what: string): unknown {
  const used = new Set<string>();
  /** Objects on the path from the top to here: meeting one again is a cycle, which JSON cannot hold. */
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: string[]): unknown => {
    if (v === null || typeof v !== 'object' || v instanceof Tensor) return visit(v, path);
    if (ancestors.has(v)) throw new TypeError(`${what}: the object at ${path.length ? `'${path.join('.')}'` : 'the top level'} refers back to itself (a cycle); a checkpoint holds trees of values`);
    ancestors.add(v);
    try {
      return visit(v, path);
    } finally {
      ancestors.delete(v);
    }
  };
  const visit = (v: unknown, path: string[]): unknown => {
    const at = () => (path.length ? `'${path.join('.')}'` : 'the top level');
    if (v instanceof Tensor) {
      v.check();
      const base = path.join('.') || 'tensor';
      let key = base;
      for (let n = 1; used.has(key); n++) key = `${base}#${n}`;
      used.add(key);
      entries.push([key, v]);
      return { [REF]: key };
    }
    if (v instanceof Module || v instanceof Optimizer) return walk(v.stateDict(), path);
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError(`${what}: the number ${v} at ${at()} cannot be stored (JSON has no NaN or Infinity)`);
      return v;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)]));
    if (typeof v === 'object' && isPlain(v)) {
      if (REF in v) throw new TypeError(`${what}: the key '${REF}' at ${at()} is reserved`);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    }
    const kind = typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;
    throw new TypeError(`${what}: cannot store a ${kind} at ${at()}; a checkpoint holds Tensors, modules, optimizers and JSON values`);
  };
  return walk(value, []);
}

function fromStored(value: unknown, tensors: Map<string, Tensor>, name: string): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      if (REF in v) {
        const key = (v as Record<string, unknown>)[REF] as string;
        const t = tensors.get(key);
        if (!t) throw new Error(`checkpoint "${name}" is damaged: it refers to a tensor '${key}' it does not hold`);
        return t;
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value);
}

/** Gives tensors the worker has staged (decoded, not yet owned) page handles. */
async function adopt(token: number, staged: { key: string; shape: number[]; dtype: 'float32' | 'int32' }[]): Promise<Map<string, Tensor>> {
  const rt = runtime();
  const handles = new Map(staged.map((s) => [s.key, new Tensor(rt.newId(), s.shape, s.dtype, false)]));
  await rt.call((e) => e.adoptTensors(token, [...handles].map(([k, t]): [string, number] => [k, t.id])));
  return handles;
}

/** @internal Stores `value` (tensors in the worker, the rest as JSON) plus `extra` JSON under `name`. */
export async function saveValue(name: string, kind: string, value: unknown, extra: Record<string, unknown>, what: string, opts: SaveOptions = {}): Promise<CheckpointInfo> {
  const entries: [string, Tensor][] = [];
  const stored = toStored(value, entries, what);
  const meta = { format: FORMAT, version: 1, ...extra, value: stored };
  const { info, nonFinite } = await runtime().call((e) => e.saveCheckpoint(name, kind, meta, entries.map(([k, t]): [string, number] => [k, t.id]), opts));
  keepAlive(entries);
  if (nonFinite.length) console.warn(`${what}: saved "${name}", but ${nonFinite.map((k) => `'${k}'`).join(', ')} hold NaN or Infinity (training diverged?)`);
  return info;
}

/** @internal Loads a checkpoint: its info, its JSON meta, and its value with Tensors in place. */
export async function loadValue(name: string): Promise<{ info: CheckpointInfo; meta: Record<string, unknown>; value: any }> {
  const { info, meta, token, tensors } = await runtime().call((e) => e.loadCheckpoint(name));
  const handles = await adopt(token, tensors);
  const m = meta as Record<string, unknown> | null;
  if (!m || m.format !== FORMAT) throw new Error(`checkpoint "${name}" was not written by sn.save or model.save`);
  return { info, meta: m, value: fromStored(m.value, handles, name) };
}

/** Holds handles reachable until this call, so the worker still has them when it reads. */
const keepAlive = (..._handles: unknown[]) => {};

/**
 * PyTorch's torch.save: a module (saved as its state dict), a state dict, an
 * optimizer, or any object of those, Tensors and JSON values
 * ({ model, optimizer, epoch }), under 'indexeddb://name'. Atomic: a failed
 * save leaves the previous checkpoint of that name as it was.
 */
export async function save(value: unknown, url: string, opts: SaveOptions = {}): Promise<CheckpointInfo> {
  const name = checkpointName(url, 'sn.save');
  const kind = value instanceof Module || isStateDict(value) ? 'state-dict' : 'object';
  return saveValue(name, kind, value, {}, 'sn.save', opts);
}

/** What sn.save stores and sn.load gives back: Tensors and JSON values, in plain objects and arrays. */
export type Saved = Tensor | string | number | boolean | null | Saved[] | { [key: string]: Saved };

/**
 * PyTorch's torch.load: what sn.save stored, with Tensors (modules come back as state dicts); then
 * loadStateDict. In TypeScript, name the shape you saved:
 * `const ckpt = await sn.load<{ model: sn.nn.StateDict; epoch: number }>('indexeddb://run')`.
 */
export async function load<T = Saved>(url: string): Promise<T> {
  return (await loadValue(checkpointName(url, 'sn.load'))).value as T;
}

function isStateDict(v: unknown): boolean {
  return !!v && typeof v === 'object' && isPlain(v) && Object.values(v).length > 0 && Object.values(v).every((t) => t instanceof Tensor);
}

/**
 * The checkpoints in IndexedDB. Names may be given bare or as 'indexeddb://name'.
 * Under Node they are files: names are file:// URLs or paths, and list(dir) lists
 * the checkpoints in a directory (default: the working directory).
 */
export const checkpoints = {
  async list(dir?: string): Promise<CheckpointInfo[]> {
    if (!fileCheckpoints && dir !== undefined) throw new TypeError('checkpoints.list: takes a directory only under Node; in a browser it lists IndexedDB');
    const location = fileCheckpoints ? fileLocation(dir ?? '.', 'checkpoints.list') : undefined;
    return runtime().call((e) => e.listCheckpoints(location));
  },
  async exists(name: string): Promise<boolean> {
    const n = nameOf(name, 'checkpoints.exists');
    return runtime().call((e) => e.checkpointExists(n));
  },
  /** Resolves true when there was a checkpoint to delete. */
  async delete(name: string): Promise<boolean> {
    const n = nameOf(name, 'checkpoints.delete');
    return runtime().call((e) => e.deleteCheckpoint(n));
  },
};

function stateDictOf(v: Module | StateDict, what: string): StateDict {
  const sd = v instanceof Module ? v.stateDict() : v;
  if (!sd || typeof sd !== 'object') throw new TypeError(`${what}: expected a module or a state dict`);
  for (const [k, t] of Object.entries(sd)) if (!(t instanceof Tensor)) throw new TypeError(`${what}: state dict entry '${k}' is not a Tensor`);
  return sd;
}

/** safetensors files, the format of PyTorch's safetensors.torch.save_file; names and layouts are PyTorch's state_dict. */
export const safetensors = {
  /** The module's (or state dict's) tensors as a safetensors file, encoded in the worker. */
  async save(moduleOrStateDict: Module | StateDict): Promise<Uint8Array> {
    const sd = stateDictOf(moduleOrStateDict, 'safetensors.save');
    const entries = Object.entries(sd).map(([k, t]): [string, number] => (t.check(), [k, t.id]));
    // format 'pt' as safetensors.torch writes it: loaders that check the metadata accept the file.
    const bytes = await runtime().call((e) => e.encodeSafetensors(entries, { format: 'pt' }));
    keepAlive(sd);
    return bytes;
  },

  /**
   * A state dict of Tensors from a safetensors file, decoded in the worker: F32, F16, BF16 widen to
   * float32, I32 stays int32, I64 narrows to int32 (checked). The bytes are copied to the worker;
   * with { transfer: true } their buffer is moved instead (no copy; it is detached here afterwards).
   */
  async load(bytes: Uint8Array | ArrayBuffer, { transfer = false }: { transfer?: boolean } = {}): Promise<StateDict> {
    const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    if (!(view instanceof Uint8Array)) throw new TypeError('safetensors.load: expected a Uint8Array or an ArrayBuffer');
    const arg = transfer ? Comlink.transfer(view, [view.buffer]) : view;
    const { token, tensors } = await runtime().call((e) => e.decodeSafetensors(arg));
    return Object.fromEntries(await adopt(token, tensors));
  },
};
