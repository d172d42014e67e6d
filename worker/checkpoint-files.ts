/// <reference types="node" />
/**
 * Checkpoints as files, where IndexedDB is missing (Node). Same contract as
 * the IndexedDB CheckpointStore: a location holds a `kind`, a JSON `meta` and
 * named blobs; saves are atomic, damage is reported, never returned.
 *
 * A checkpoint at `file:///path/model` (or `file://./model`, or the plain path
 * `path/model`) is a directory, as TF.js's file:// models are:
 *   model/checkpoint.json                 the manifest: kind, savedAt, meta, and per blob its file, length, CRC-32
 *   model/<blob>-<version>.safetensors    each blob of that version (shadenet's one blob is a safetensors file)
 *
 * Why a save survives a crash: the new version's blob files get fresh names
 * and are flushed to disk; the manifest is written to a temporary file,
 * flushed, then renamed over checkpoint.json (the rename is atomic), so a
 * reader sees the old manifest or the new one. Only then are the old
 * version's files removed. A save that dies earlier leaves unreferenced
 * `*.safetensors` files beside an intact old version; the next save of that
 * location removes them. Saves and deletes of one location are serialized
 * within the process; across processes the rename keeps readers consistent,
 * but two processes saving the same location at once are not supported.
 */
import { mkdir, open, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { CheckpointError, crc32, type CheckpointInfo } from './checkpoint-store.js';

const MANIFEST = 'checkpoint.json';
const FORMAT = 'shadenet-checkpoint-files';

interface BlobFile { file: string; bytes: number; crc32: number; }
interface Manifest {
  format: string;
  kind: string;
  savedAt: string;
  bytes: number;
  version: string;
  meta: unknown;
  blobs: Record<string, BlobFile>;
}

/**
 * A location as a path: a file:// URL (`file:///abs/path`, percent-encoded as
 * pathToFileURL writes it), TF.js's relative form (`file://./model`), or a
 * plain path; relative ones are against the working directory.
 */
function pathOf(location: string): string {
  if (typeof location !== 'string' || !location) {
    throw new CheckpointError(`checkpoint location must be a file:// URL or a path, got ${JSON.stringify(location)}`, { code: 'invalid-argument' });
  }
  if (!location.startsWith('file:')) return location;
  const rest = location.slice('file://'.length);
  if (location.startsWith('file://') && rest && !rest.startsWith('/') && !rest.startsWith('localhost/')) return rest;
  try {
    return fileURLToPath(location);
  } catch (e) {
    throw new CheckpointError(`checkpoint location ${JSON.stringify(location)} is not a valid file URL: ${(e as Error).message}`, { code: 'invalid-argument', cause: e });
  }
}

const errno = (e: unknown) => (e as { code?: string } | null)?.code;

function ioError(what: string, e: unknown): CheckpointError {
  if (e instanceof CheckpointError) return e;
  return new CheckpointError(`could not ${what}: ${(e as Error)?.message ?? e}`, { code: 'io', cause: e });
}

/** Throws unless `m` is a manifest this store wrote. */
function checkManifest(m: unknown, location: string): Manifest {
  const bad = (why: string) => new CheckpointError(`checkpoint "${location}" is damaged: its ${MANIFEST} ${why}`, { code: 'corrupt' });
  if (!m || typeof m !== 'object') throw bad('is not an object');
  const man = m as Partial<Manifest>;
  if (man.format !== FORMAT || typeof man.version !== 'string' || typeof man.kind !== 'string' || !man.blobs || typeof man.blobs !== 'object') {
    throw bad('lacks its format, version, kind or blobs');
  }
  for (const [blob, ref] of Object.entries(man.blobs)) {
    // A file name, never a path: a hostile manifest must not make us read or delete elsewhere.
    if (!ref || typeof ref.file !== 'string' || /[/\\]/.test(ref.file) || ref.file.startsWith('.') || typeof ref.bytes !== 'number' || typeof ref.crc32 !== 'number') {
      throw bad(`has a malformed entry for blob "${blob}"`);
    }
  }
  return man as Manifest;
}

const infoOf = (location: string, m: Manifest): CheckpointInfo => ({ name: location, bytes: m.bytes, savedAt: m.savedAt, kind: m.kind });

/** Writes bytes to a new file and flushes them to disk before resolving. */
async function writeDurably(path: string, bytes: Uint8Array) {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a rename in `dir` durable (best effort: not every platform can sync a directory). */
async function syncDir(dir: string) {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch { /* e.g. Windows */ }
}

const locks = new Map<string, Promise<unknown>>();

/** Runs fn after every earlier call for the same directory has settled. */
function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const run = (locks.get(dir) ?? Promise.resolve()).then(fn, fn);
  const tail = run.then(() => undefined, () => undefined);
  locks.set(dir, tail);
  void tail.then(() => { if (locks.get(dir) === tail) locks.delete(dir); });
  return run;
}

export class FileCheckpointStore {
  async save(location: string, kind: string, meta: unknown, blobs: Record<string, Uint8Array>): Promise<CheckpointInfo> {
    const dir = pathOf(location);
    let metaCopy: unknown;
    try {
      metaCopy = JSON.parse(JSON.stringify(meta) ?? 'null');
    } catch (e) {
      throw new CheckpointError(`checkpoint "${location}": meta is not JSON-serializable (${(e as Error).message})`, { code: 'invalid-argument', cause: e });
    }
    return withLock(dir, async () => {
      const version = randomUUID();
      const written: string[] = [];
      const manifest: Manifest = { format: FORMAT, kind, savedAt: new Date().toISOString(), bytes: 0, version, meta: metaCopy, blobs: {} };
      let previous: Manifest | null = null;
      try {
        await mkdir(dir, { recursive: true });
        previous = await this.readManifest(location, dir).catch(() => null);
        await this.removeOrphans(dir, previous);
        for (const [blob, bytes] of Object.entries(blobs)) {
          if (!/^[\w-]+$/.test(blob)) throw new CheckpointError(`checkpoint "${location}": blob name "${blob}" is not a plain word`, { code: 'invalid-argument' });
          const file = `${blob}-${version}.safetensors`;
          written.push(file); // before the write: a failed write may have left part of the file
          await writeDurably(join(dir, file), bytes);
          manifest.blobs[blob] = { file, bytes: bytes.byteLength, crc32: crc32(bytes) };
          manifest.bytes += bytes.byteLength;
        }
        const temp = `${MANIFEST}.${version}.tmp`;
        written.push(temp);
        await writeDurably(join(dir, temp), new TextEncoder().encode(JSON.stringify(manifest)));
        // The swap: readers see the old manifest or this one.
        await rename(join(dir, temp), join(dir, MANIFEST));
        written.pop();
        await syncDir(dir);
      } catch (e) {
        await Promise.all(written.map((f) => rm(join(dir, f), { force: true }).catch(() => {})));
        if (errno(e) === 'ENOSPC' || errno(e) === 'EDQUOT') {
          throw new CheckpointError(
            `the disk is full: saving checkpoint "${location}" needs ${manifest.bytes || Object.values(blobs).reduce((s, b) => s + b.byteLength, 0)} bytes; the previous version, if any, is intact`,
            { code: 'quota', cause: e, name: 'QuotaExceededError' },
          );
        }
        throw ioError(`save checkpoint "${location}"`, e);
      }
      // The new version is durable; removing the old one is best effort (the next save retries).
      if (previous) await this.removeBlobs(dir, previous, manifest);
      return infoOf(location, manifest);
    });
  }

  async load(location: string): Promise<{ info: CheckpointInfo; meta: unknown; blobs: Record<string, Uint8Array> }> {
    const dir = pathOf(location);
    // A save elsewhere may swap the manifest and remove the blobs it names between our two reads: read again then.
    for (let attempt = 0; ; attempt++) {
      const m = await this.readManifest(location, dir);
      try {
        return { info: infoOf(location, m), meta: m.meta, blobs: await this.readBlobs(location, dir, m) };
      } catch (e) {
        if (attempt > 0 || errno((e as CheckpointError).cause) !== 'ENOENT') throw e;
        const now = await this.readManifest(location, dir).catch(() => null);
        if (!now || now.version === m.version) throw e;
      }
    }
  }

  async exists(location: string): Promise<boolean> {
    try {
      await readFile(join(pathOf(location), MANIFEST));
      return true;
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return false;
      throw ioError(`read checkpoint "${location}"`, e);
    }
  }

  async delete(location: string): Promise<boolean> {
    const dir = pathOf(location);
    return withLock(dir, async () => {
      let m: Manifest | null;
      try {
        m = await this.readManifest(location, dir);
      } catch (e) {
        if ((e as CheckpointError).code === 'not-found') return false;
        m = null; // damaged: still remove it
      }
      // Removing the manifest is the delete; its blob files and the directory go after it.
      try {
        await rm(join(dir, MANIFEST));
      } catch (e) {
        if (errno(e) === 'ENOENT') return false;
        throw ioError(`delete checkpoint "${location}"`, e);
      }
      if (m) await this.removeBlobs(dir, m, null);
      await rmdir(dir).catch(() => {}); // only when empty: files of the user's stay
      return true;
    });
  }

  /** The checkpoints in the directory `location` (one level down), named as `location` joined with each entry. */
  async list(location: string): Promise<CheckpointInfo[]> {
    const dir = pathOf(location);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      throw ioError(`list checkpoints in "${location}"`, e);
    }
    const infos: CheckpointInfo[] = [];
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const child = location.startsWith('file:') ? `${location.replace(/\/+$/, '')}/${encodeURIComponent(entry.name)}` : join(location, entry.name);
      try {
        infos.push(infoOf(child, await this.readManifest(child, join(dir, entry.name))));
      } catch { /* not a checkpoint, or a damaged one: load() and delete() still reach it */ }
    }
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async readManifest(location: string, dir: string): Promise<Manifest> {
    let text: string;
    try {
      text = await readFile(join(dir, MANIFEST), 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') throw new CheckpointError(`no checkpoint at "${location}"`, { code: 'not-found', cause: e });
      throw ioError(`read checkpoint "${location}"`, e);
    }
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch (e) {
      throw new CheckpointError(`checkpoint "${location}" is damaged: its ${MANIFEST} is not JSON`, { code: 'corrupt', cause: e });
    }
    return checkManifest(m, location);
  }

  private async readBlobs(location: string, dir: string, m: Manifest): Promise<Record<string, Uint8Array>> {
    const out: Record<string, Uint8Array> = {};
    for (const [blob, ref] of Object.entries(m.blobs)) {
      const damaged = (why: string, cause?: unknown) => new CheckpointError(`checkpoint "${location}" is damaged: blob "${blob}" (${ref.file}) ${why}`, { code: 'corrupt', cause });
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(join(dir, ref.file)));
      } catch (e) {
        if (errno(e) === 'ENOENT') throw damaged('is missing', e);
        throw ioError(`read checkpoint "${location}"`, e);
      }
      if (bytes.byteLength !== ref.bytes) throw damaged(`has ${bytes.byteLength} bytes, expected ${ref.bytes}`);
      if (crc32(bytes) !== ref.crc32) throw damaged('fails its CRC-32 check');
      out[blob] = bytes;
    }
    return out;
  }

  /** Removes the blob files of `m` that `keep` does not use. */
  private async removeBlobs(dir: string, m: Manifest, keep: Manifest | null) {
    const used = new Set(Object.values(keep?.blobs ?? {}).map((b) => b.file));
    await Promise.all(Object.values(m.blobs).filter((b) => !used.has(b.file)).map((b) => rm(join(dir, b.file), { force: true }).catch(() => {})));
  }

  /** Blob files and temporary manifests of saves that died: everything of ours the current manifest does not name. */
  private async removeOrphans(dir: string, current: Manifest | null) {
    const used = new Set(Object.values(current?.blobs ?? {}).map((b) => b.file));
    const ours = /^([\w-]+-[0-9a-f-]{36}\.safetensors|checkpoint\.json\.[0-9a-f-]{36}\.tmp)$/;
    const names = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(names.filter((f) => ours.test(f) && !used.has(f)).map((f) => rm(join(dir, f), { force: true }).catch(() => {})));
  }
}
