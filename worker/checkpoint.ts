// Checkpoints on the worker side: tensors read straight from the engine's
// buffers are packed into ONE safetensors blob per checkpoint and stored with
// a JSON `meta` in the crash-safe CheckpointStore (chunking, CRC-32, atomic
// manifest swap live there). One safetensors blob rather than a blob per
// tensor: the stored bytes are then exactly what `sn.safetensors.save` would
// give (one format for storage and interop, one hostile-input decoder on the
// way back), and the store chunks a large blob anyway, so no IndexedDB value
// grows with the model.
//
// Loading happens in two steps because tensor ids are allocated by the page:
// `stage` decodes into CPU arrays kept under a token and reports each tensor's
// key, shape and dtype; the page makes a handle per tensor and `adopt`s the
// staged arrays under those ids.

import { CheckpointStore, CheckpointError, type CheckpointInfo } from './checkpoint-store.js';
import { decodeSafetensors, encodeSafetensors, type RawTensor } from './safetensors.js';


/** The single blob of a checkpoint: every tensor, as a safetensors file. */
const TENSORS_BLOB = 'tensors';

/** What the page learns about a staged tensor before it gives it an id. */
export interface StagedTensor {
  key: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export interface SaveOptions {
  /** TEST HOOK, passed to the store: fail like a full disk past this many bytes. */
  simulateQuotaAfterBytes?: number;
}

/** Where checkpoints live: IndexedDB in browsers, files under Node (worker/checkpoint-files.ts). */
export interface CheckpointStorage {
  save(name: string, kind: string, meta: unknown, blobs: Record<string, Uint8Array>): Promise<CheckpointInfo>;
  load(name: string): Promise<{ info: CheckpointInfo; meta: unknown; blobs: Record<string, Uint8Array> }>;
  /** Names in IndexedDB; under a directory for files. */
  list(location?: string): Promise<CheckpointInfo[]>;
  exists(name: string): Promise<boolean>;
  delete(name: string): Promise<boolean>;
}

export class Checkpoints {
  /** IndexedDB is opened on first use: a host without it (Node) passes its own storage instead. */
  private storeInstance: CheckpointStorage | null;
  private readonly staged = new Map<number, Record<string, RawTensor>>();
  private nextToken = 1;

  constructor(storage?: CheckpointStorage) {
    this.storeInstance = storage ?? null;
  }

  private get store(): CheckpointStorage {
    return (this.storeInstance ??= new CheckpointStore());
  }

  async save(name: string, kind: string, meta: unknown, tensors: Record<string, RawTensor>, opts: SaveOptions = {}): Promise<CheckpointInfo> {
    const store = opts.simulateQuotaAfterBytes === undefined ? this.store : this.quotaStore(opts.simulateQuotaAfterBytes);
    return store.save(name, kind, meta, { [TENSORS_BLOB]: encodeSafetensors(tensors) });
  }

  /** Reads and checks a checkpoint; its tensors wait under the returned token for adopt(). */
  async load(name: string): Promise<{ info: CheckpointInfo; meta: unknown; token: number; tensors: StagedTensor[] }> {
    const { info, meta, blobs } = await this.store.load(name);
    const bytes = blobs[TENSORS_BLOB];
    if (!bytes) throw new Error(`checkpoint "${name}" has no tensor data (it was not written by shadenet)`);
    const { tensors } = decodeSafetensors(bytes);
    return { info, meta, ...this.stage(tensors) };
  }

  /** Decodes a safetensors file (hostile input) into staged tensors. */
  decode(bytes: Uint8Array): { token: number; tensors: StagedTensor[]; metadata: Record<string, string> } {
    const { tensors, metadata } = decodeSafetensors(bytes);
    return { ...this.stage(tensors), metadata };
  }

  encode(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
    return encodeSafetensors(tensors, metadata);
  }

  /** Hands over the staged tensors of `token` (once) in key order of `keys`. */
  take(token: number, keys: string[]): RawTensor[] {
    const staged = this.staged.get(token);
    if (!staged) throw new Error(`no staged checkpoint tensors under token ${token}`);
    this.staged.delete(token);
    return keys.map((k) => {
      const t = staged[k];
      if (!t) throw new Error(`staged checkpoint has no tensor "${k}"`);
      return t;
    });
  }

  list(location?: string): Promise<CheckpointInfo[]> {
    return this.store.list(location);
  }

  private quotaStore(bytes: number): CheckpointStorage {
    if (this.storeInstance && !(this.storeInstance instanceof CheckpointStore)) {
      throw new CheckpointError('simulateQuotaAfterBytes is a test hook of the IndexedDB store', { code: 'invalid-argument' });
    }
    return new CheckpointStore({ simulateQuotaAfterBytes: bytes });
  }

  exists(name: string): Promise<boolean> {
    return this.store.exists(name);
  }

  delete(name: string): Promise<boolean> {
    return this.store.delete(name);
  }

  private stage(tensors: Record<string, RawTensor>): { token: number; tensors: StagedTensor[] } {
    const token = this.nextToken++;
    this.staged.set(token, tensors);
    return { token, tensors: Object.entries(tensors).map(([key, t]) => ({ key, shape: t.shape, dtype: t.dtype })) };
  }
}
