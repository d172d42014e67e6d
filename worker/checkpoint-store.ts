/**
 * Crash-safe named checkpoints in IndexedDB (idb-keyval, our own store).
 *
 * A checkpoint is opaque to this file: a name, a `kind` string, a JSON value
 * (`meta`) and several named binary blobs. It knows nothing about tensors.
 *
 * Key layout in the object store (default: database `shadenet`, store `checkpoints`):
 *   m:<name>                              manifest (one per checkpoint)
 *   c:<name>:<version>:<blob>:<i>         i-th chunk of a blob (an ArrayBuffer)
 * Manifest: { name, kind, savedAt, bytes, version, meta,
 *             blobs: { [blob]: { bytes, chunks: [{ key, bytes, crc32 }] } } }
 *
 * Why it survives a crash (tab closed, worker terminated, quota hit):
 *   1. save() writes every chunk of the new version under fresh keys; nothing
 *      that a reader looks at changes yet;
 *   2. it swaps the manifest in ONE transaction (idb-keyval `update`), so a
 *      reader sees the old version or the new one, never a mix;
 *   3. only then does it delete the old version's chunks.
 * A save that dies before 2 leaves orphan chunks and an intact old version;
 * one that dies after 2 leaves the old version's chunks as orphans. Orphans
 * are removed by collectGarbage(), which every save() runs first.
 * load() reads the manifest and all its chunks in one read transaction and
 * checks each chunk's length and CRC-32, so damage is reported, never returned.
 *
 * Saves, deletes and garbage collection of one store are serialized with a Web
 * Lock (navigator.locks; shared by the page and every worker of the origin and
 * released by the browser when a worker is terminated), so a collection never
 * removes the chunks of a save still in flight elsewhere. Without Web Locks
 * (old browsers, Node) they are serialized within this JS realm only.
 *
 * Works in a Web Worker: no `window`, only globalThis/indexedDB/navigator.
 */
import { createStore, delMany, promisifyRequest, update, type UseStore } from 'idb-keyval';

export interface CheckpointInfo {
  name: string;
  bytes: number;
  savedAt: string; // ISO 8601
  kind: string;
}

export type CheckpointErrorCode = 'invalid-argument' | 'not-found' | 'corrupt' | 'quota' | 'io';

/**
 * Every failure of the store. `code` says which kind; `cause` holds the
 * underlying error when there is one. A quota failure keeps the platform's
 * name: `err.name === 'QuotaExceededError'` (and `err instanceof CheckpointError`).
 */
export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;
  constructor(message: string, opts: { code?: CheckpointErrorCode; cause?: unknown; name?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = opts.name ?? 'CheckpointError';
    this.code = opts.code ?? 'io';
  }
}

export interface StoreOptions {
  /** Largest chunk written as one IndexedDB value. Default 8 MiB. */
  chunkBytes?: number;
  /**
   * TEST HOOK. When set, a chunk write that would bring the bytes written by
   * the current save() above this many bytes throws
   * `new DOMException(..., 'QuotaExceededError')` instead of writing, exactly
   * as a full disk would. Leave unset in real use.
   */
  simulateQuotaAfterBytes?: number;
}

interface ChunkRef { key: string; bytes: number; crc32: number; }
interface BlobRef { bytes: number; chunks: ChunkRef[]; }
interface Manifest {
  name: string;
  kind: string;
  savedAt: string;
  bytes: number;
  version: string;
  meta: unknown;
  blobs: Record<string, BlobRef>;
}

const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
const MANIFESTS = (): IDBKeyRange => IDBKeyRange.bound('m:', 'm;', false, true); // every key starting "m:"
const CHUNKS = (): IDBKeyRange => IDBKeyRange.bound('c:', 'c;', false, true); // every key starting "c:"
const manifestKey = (name: string) => `m:${name}`;

// ---------------------------------------------------------------- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- helpers

function formatBytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

function isQuotaError(e: unknown): boolean {
  const err = e as { name?: unknown; code?: unknown } | null;
  return !!err && (err.name === 'QuotaExceededError' || err.name === 'NS_ERROR_DOM_QUOTA_REACHED' || err.code === 22);
}

function describe(e: unknown): string {
  if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
    const err = e as { name?: string; message?: string };
    return err.name ? `${err.name}: ${err.message}` : String(err.message);
  }
  return String(e);
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new CheckpointError(
      `checkpoint name must be a non-empty string, got ${typeof name === 'string' ? 'an empty string' : typeof name}`,
      { code: 'invalid-argument' },
    );
  }
}

function newVersion(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${(++versionCounter).toString(36)}`;
}
let versionCounter = 0;

/** Chunk values may come back as ArrayBuffer or as a view; anything else is damage. */
function asBytes(v: unknown): Uint8Array | null {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return null;
}

/** Throws unless `m` has the manifest's shape; returns every chunk key in order. */
function chunkKeysOf(m: unknown, name: string): string[] {
  const bad = (why: string) =>
    new CheckpointError(`checkpoint "${name}" is damaged: its manifest ${why}`, { code: 'corrupt' });
  if (!m || typeof m !== 'object') throw bad('is not an object');
  const man = m as Partial<Manifest>;
  if (typeof man.version !== 'string' || !man.blobs || typeof man.blobs !== 'object') throw bad('lacks version or blobs');
  const keys: string[] = [];
  for (const [blob, ref] of Object.entries(man.blobs)) {
    if (!ref || typeof ref.bytes !== 'number' || !Array.isArray(ref.chunks)) throw bad(`has a malformed entry for blob "${blob}"`);
    for (const c of ref.chunks) {
      if (!c || typeof c.key !== 'string' || typeof c.bytes !== 'number' || typeof c.crc32 !== 'number') {
        throw bad(`has a malformed chunk in blob "${blob}"`);
      }
      keys.push(c.key);
    }
  }
  return keys;
}

function infoOf(m: Manifest): CheckpointInfo {
  return { name: m.name, bytes: m.bytes, savedAt: m.savedAt, kind: m.kind };
}

// ---------------------------------------------------------------- lock

const localLocks = new Map<string, Promise<unknown>>();

function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks && typeof locks.request === 'function') {
    return locks.request(name, { mode: 'exclusive' }, () => fn()) as Promise<T>;
  }
  const prev = localLocks.get(name) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.then(() => undefined, () => undefined);
  localLocks.set(name, tail);
  void tail.then(() => { if (localLocks.get(name) === tail) localLocks.delete(name); });
  return run;
}

// ---------------------------------------------------------------- store

export class CheckpointStore {
  private readonly store: UseStore;
  private readonly lockName: string;
  private readonly chunkBytes: number;
  private readonly quotaAfter: number | undefined;

  constructor(opts: StoreOptions & { dbName?: string; storeName?: string } = {}) {
    const dbName = opts.dbName ?? 'shadenet';
    const storeName = opts.storeName ?? 'checkpoints';
    const chunk = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isInteger(chunk) || chunk <= 0) {
      throw new CheckpointError(`chunkBytes must be a positive integer, got ${chunk}`, { code: 'invalid-argument' });
    }
    this.chunkBytes = chunk;
    this.quotaAfter = opts.simulateQuotaAfterBytes;
    this.store = createStore(dbName, storeName);
    this.lockName = `shadenet-checkpoints:${dbName}/${storeName}`;
  }

  async save(name: string, kind: string, meta: unknown, blobs: Record<string, Uint8Array>): Promise<CheckpointInfo> {
    checkName(name);
    if (typeof kind !== 'string') throw new CheckpointError(`checkpoint "${name}": kind must be a string`, { code: 'invalid-argument' });
    if (!blobs || typeof blobs !== 'object') {
      throw new CheckpointError(`checkpoint "${name}": blobs must be an object of Uint8Arrays`, { code: 'invalid-argument' });
    }
    const parts: [string, Uint8Array][] = [];
    for (const [blob, v] of Object.entries(blobs)) {
      const bytes = asBytes(v);
      if (!blob) throw new CheckpointError(`checkpoint "${name}": blob names must be non-empty`, { code: 'invalid-argument' });
      if (!bytes) throw new CheckpointError(`checkpoint "${name}": blob "${blob}" is not a Uint8Array`, { code: 'invalid-argument' });
      parts.push([blob, bytes]);
    }
    let metaCopy: unknown;
    try {
      const json = JSON.stringify(meta);
      metaCopy = json === undefined ? null : JSON.parse(json);
    } catch (e) {
      throw new CheckpointError(`checkpoint "${name}": meta is not JSON-serializable (${describe(e)})`, { code: 'invalid-argument', cause: e });
    }
    const total = parts.reduce((s, [, b]) => s + b.byteLength, 0);

    return withLock(this.lockName, async () => {
      try { await this.collectGarbageLocked(); } catch { /* best effort: the writes below report real trouble */ }

      const version = newVersion();
      const written: string[] = [];
      const manifest: Manifest = {
        name, kind, savedAt: new Date().toISOString(), bytes: total, version, meta: metaCopy, blobs: {},
      };
      let previous: unknown;
      try {
        let sent = 0;
        for (const [blob, bytes] of parts) {
          const ref: BlobRef = { bytes: bytes.byteLength, chunks: [] };
          for (let off = 0, i = 0; off < bytes.byteLength; off += this.chunkBytes, i++) {
            const piece = bytes.slice(off, Math.min(off + this.chunkBytes, bytes.byteLength)); // a copy
            if (this.quotaAfter !== undefined && sent + piece.byteLength > this.quotaAfter) {
              throw new DOMException(`simulated quota of ${this.quotaAfter} bytes reached`, 'QuotaExceededError');
            }
            const key = `c:${name}:${version}:${blob}:${i}`;
            written.push(key); // before the write: a failed write may still have landed
            await this.put(key, piece.buffer);
            sent += piece.byteLength;
            ref.chunks.push({ key, bytes: piece.byteLength, crc32: crc32(piece) });
          }
          manifest.blobs[blob] = ref;
        }
        // The swap: one readwrite transaction; readers see the old manifest or this one.
        await update(manifestKey(name), (old) => { previous = old; return manifest; }, this.store);
      } catch (e) {
        try { await delMany(written, this.store); } catch { /* best effort; collectGarbage() finishes it */ }
        if (isQuotaError(e)) {
          throw new CheckpointError(
            `storage is full: saving checkpoint "${name}" needs ${formatBytes(total)} (${total} bytes); ` +
              `the previous version, if any, is intact. Free space by deleting checkpoints or other site data.`,
            { code: 'quota', cause: e, name: 'QuotaExceededError' },
          );
        }
        if (e instanceof CheckpointError) throw e;
        throw new CheckpointError(`could not save checkpoint "${name}": ${describe(e)}`, { code: 'io', cause: e });
      }

      // After the swap the new version is durable; removing the old one is best effort.
      if (previous !== undefined) {
        try {
          const keep = new Set(written);
          const old = chunkKeysOf(previous, name).filter((k) => !keep.has(k));
          if (old.length) await delMany(old, this.store);
        } catch { /* orphans are collected by the next save or collectGarbage() */ }
      }
      return infoOf(manifest);
    });
  }

  async load(name: string): Promise<{ info: CheckpointInfo; meta: unknown; blobs: Record<string, Uint8Array> }> {
    checkName(name);
    let found: { m: Manifest; chunks: unknown[] } | null;
    try {
      // Manifest and chunks in ONE read transaction: a concurrent save cannot
      // swap and delete underneath us.
      found = await this.store('readonly', (s) => new Promise<{ m: Manifest; chunks: unknown[] } | null>((resolve, reject) => {
        const mreq = s.get(manifestKey(name));
        mreq.onerror = () => reject(mreq.error);
        mreq.onsuccess = () => {
          const m = mreq.result as unknown;
          if (m === undefined) return resolve(null);
          let keys: string[];
          try { keys = chunkKeysOf(m, name); } catch (e) { return reject(e); }
          const chunks = new Array<unknown>(keys.length);
          let left = keys.length;
          if (left === 0) return resolve({ m: m as Manifest, chunks });
          keys.forEach((key, i) => {
            const r = s.get(key);
            r.onerror = () => reject(r.error);
            r.onsuccess = () => { chunks[i] = r.result; if (--left === 0) resolve({ m: m as Manifest, chunks }); };
          });
        };
      }));
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(`could not read checkpoint "${name}": ${describe(e)}`, { code: 'io', cause: e });
    }
    if (!found) throw new CheckpointError(`no checkpoint named "${name}"`, { code: 'not-found' });

    const { m, chunks } = found;
    const out: Record<string, Uint8Array> = {};
    let at = 0;
    for (const [blob, ref] of Object.entries(m.blobs)) {
      const damaged = (why: string) =>
        new CheckpointError(`checkpoint "${name}" is damaged: blob "${blob}" ${why}`, { code: 'corrupt' });
      const sum = ref.chunks.reduce((s, c) => s + c.bytes, 0);
      if (sum !== ref.bytes) throw damaged(`lists ${sum} bytes of chunks for ${ref.bytes} bytes`);
      const bytes = new Uint8Array(ref.bytes);
      let off = 0;
      for (let i = 0; i < ref.chunks.length; i++) {
        const c = ref.chunks[i];
        const v = chunks[at++];
        if (v === undefined) throw damaged(`is missing chunk ${i}`);
        const got = asBytes(v);
        if (!got) throw damaged(`has chunk ${i} of the wrong type`);
        if (got.byteLength !== c.bytes) throw damaged(`has chunk ${i} of ${got.byteLength} bytes, expected ${c.bytes}`);
        if (crc32(got) !== c.crc32) throw damaged(`has chunk ${i} failing its CRC-32 check`);
        bytes.set(got, off);
        off += got.byteLength;
      }
      out[blob] = bytes;
    }
    return { info: infoOf(m), meta: m.meta, blobs: out };
  }

  async list(): Promise<CheckpointInfo[]> {
    const all = await this.wrapIo('list checkpoints', () =>
      this.store('readonly', (s) => promisifyRequest(s.getAll(MANIFESTS())) as Promise<unknown[]>));
    const infos: CheckpointInfo[] = [];
    for (const m of all) {
      try { chunkKeysOf(m, '?'); } catch { continue; } // a damaged manifest: load() and delete() still reach it by name
      const man = m as Manifest;
      if (typeof man.name === 'string') infos.push(infoOf(man));
    }
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async exists(name: string): Promise<boolean> {
    checkName(name);
    const n = await this.wrapIo(`read checkpoint "${name}"`, () =>
      this.store('readonly', (s) => promisifyRequest(s.count(manifestKey(name)))));
    return n > 0;
  }

  async delete(name: string): Promise<boolean> {
    checkName(name);
    return withLock(this.lockName, async () => {
      // Remove the manifest first (one transaction): from then on the checkpoint is gone.
      const m = await this.wrapIo(`delete checkpoint "${name}"`, () =>
        this.store('readwrite', (s) => new Promise<unknown>((resolve, reject) => {
          const req = s.get(manifestKey(name));
          req.onerror = () => reject(req.error);
          req.onsuccess = () => {
            if (req.result !== undefined) s.delete(manifestKey(name));
            promisifyRequest(s.transaction).then(() => resolve(req.result), reject);
          };
        })));
      if (m === undefined) return false;
      try { await delMany(chunkKeysOf(m, name), this.store); } catch { /* orphans: collectGarbage() */ }
      return true;
    });
  }

  async collectGarbage(): Promise<number> {
    return withLock(this.lockName, () => this.collectGarbageLocked());
  }

  /** One readwrite transaction: read every manifest and chunk key, delete unreferenced chunks. */
  private collectGarbageLocked(): Promise<number> {
    return this.wrapIo('collect garbage', () => this.store('readwrite', (s) => new Promise<number>((resolve, reject) => {
      const mkeys = s.getAllKeys(MANIFESTS());
      const mreq = s.getAll(MANIFESTS());
      const kreq = s.getAllKeys(CHUNKS());
      for (const r of [mkeys, mreq, kreq]) r.onerror = () => reject(r.error);
      kreq.onsuccess = () => {
        // requests on one store complete in order: mkeys and mreq are done here
        const live = new Set<string>();
        const damaged: string[] = []; // chunk-key prefixes of checkpoints whose manifest we cannot read
        (mreq.result as unknown[]).forEach((m, i) => {
          try {
            for (const k of chunkKeysOf(m, String(mkeys.result[i]).slice(2))) live.add(k);
          } catch {
            damaged.push(`c:${String(mkeys.result[i]).slice(2)}:`); // keep its chunks: never guess
          }
        });
        let n = 0;
        for (const k of kreq.result) {
          if (typeof k !== 'string' || live.has(k) || damaged.some((p) => k.startsWith(p))) continue;
          s.delete(k);
          n++;
        }
        promisifyRequest(s.transaction).then(() => resolve(n), reject);
      };
    })));
  }

  private put(key: string, value: ArrayBuffer): Promise<void> {
    return this.store('readwrite', (s) => {
      s.put(value, key);
      return promisifyRequest(s.transaction) as unknown as Promise<void>;
    });
  }

  private async wrapIo<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(`could not ${what}: ${describe(e)}`, { code: 'io', cause: e });
    }
  }
}
