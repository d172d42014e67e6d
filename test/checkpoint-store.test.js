// worker/checkpoint-store.ts against real IndexedDB in Chromium.
// Every test uses its own database so tests cannot see each other's keys.
import { expect } from '@esm-bundle/chai';
import { CheckpointStore, CheckpointError, idb } from '../build/test/checkpoint-store.js';
import { content } from './checkpoint-kill-worker.js';
import { rejection } from './util.js';

let dbSerial = 0;
const freshDb = () => `shadenet-ckpt-test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${dbSerial++}`;
const rawStore = (dbName) => idb.createStore(dbName, 'checkpoints');

function randomBytes(n, seed) {
  const out = new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0 || 7;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

function sameBytes(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function expectBlobs(actual, expected) {
  expect(Object.keys(actual).sort()).to.deep.equal(Object.keys(expected).sort());
  for (const k of Object.keys(expected)) {
    expect(sameBytes(actual[k], expected[k]), `blob "${k}" differs`).to.equal(true);
  }
}


/** Chunk keys present in the raw store, and chunk keys the manifests reference. */
async function chunkAccounting(dbName) {
  const raw = rawStore(dbName);
  const all = await idb.keys(raw);
  const present = all.filter((k) => typeof k === 'string' && k.startsWith('c:')).sort();
  const referenced = [];
  for (const mk of all.filter((k) => typeof k === 'string' && k.startsWith('m:'))) {
    const m = await idb.get(mk, raw);
    for (const ref of Object.values(m.blobs)) for (const c of ref.chunks) referenced.push(c.key);
  }
  return { present, referenced: referenced.sort() };
}

async function expectNoOrphans(dbName) {
  const { present, referenced } = await chunkAccounting(dbName);
  expect(present).to.deep.equal(referenced);
}

describe('CheckpointStore', () => {
  it('round-trips several blobs (empty, chunked, odd sizes) and JSON meta', async () => {
    const dbName = freshDb();
    const store = new CheckpointStore({ dbName, chunkBytes: 1000 });
    const blobs = {
      big: randomBytes(5000, 1), // 5 chunks
      odd: randomBytes(2001, 2), // 3 chunks, last one 1 byte
      small: randomBytes(10, 3), // 1 chunk
      empty: new Uint8Array(0), // no chunk
      view: randomBytes(3000, 4).subarray(500, 1700), // a view into a larger buffer
    };
    const expected = Object.fromEntries(Object.entries(blobs).map(([k, v]) => [k, v.slice()]));
    const meta = { arch: 'mlp', layers: [784, 128, 10], nested: { lr: 1e-3, ok: true, none: null } };

    const info = await store.save('model/one', 'state-dict', meta, blobs);
    expect(info.name).to.equal('model/one');
    expect(info.kind).to.equal('state-dict');
    expect(info.bytes).to.equal(5000 + 2001 + 10 + 0 + 1200);
    expect(new Date(info.savedAt).toISOString()).to.equal(info.savedAt);

    blobs.big.fill(0); // the store keeps copies, not the caller's arrays
    meta.layers.push(99);

    const got = await store.load('model/one');
    expect(got.info).to.deep.equal(info);
    expect(got.meta).to.deep.equal({ arch: 'mlp', layers: [784, 128, 10], nested: { lr: 1e-3, ok: true, none: null } });
    expectBlobs(got.blobs, expected);

    const { present } = await chunkAccounting(dbName);
    expect(present.length).to.equal(5 + 3 + 1 + 0 + 2);
    await expectNoOrphans(dbName);

    // a fresh store object on the same database reads the same thing (nothing cached)
    const again = await new CheckpointStore({ dbName }).load('model/one');
    expectBlobs(again.blobs, expected);
  });

  it('lists, checks existence and deletes', async () => {
    const dbName = freshDb();
    const store = new CheckpointStore({ dbName, chunkBytes: 1000 });
    expect(await store.list()).to.deep.equal([]);
    await store.save('b', 'model', { n: 2 }, { w: randomBytes(2500, 5) });
    await store.save('a', 'state-dict', null, { w: randomBytes(10, 6) });
    await store.save('a:b', 'state-dict', null, { w: randomBytes(1500, 7) }); // ':' in a name is fine

    const list = await store.list();
    expect(list.map((i) => i.name)).to.deep.equal(['a', 'a:b', 'b']);
    expect(list.find((i) => i.name === 'b')).to.include({ kind: 'model', bytes: 2500 });
    expect(await store.exists('a')).to.equal(true);
    expect(await store.exists('c')).to.equal(false);

    expect(await store.delete('a')).to.equal(true);
    expect(await store.delete('a')).to.equal(false);
    expect(await store.exists('a')).to.equal(false);
    expect((await store.list()).map((i) => i.name)).to.deep.equal(['a:b', 'b']);
    const err = await rejection(store.load('a'));
    expect(err).to.be.instanceOf(CheckpointError);
    // the others are untouched, and no chunk of "a" is left behind
    expectBlobs((await store.load('a:b')).blobs, { w: randomBytes(1500, 7) });
    expectBlobs((await store.load('b')).blobs, { w: randomBytes(2500, 5) });
    await expectNoOrphans(dbName);
    expect(await store.collectGarbage()).to.equal(0);
  });

  it('names a missing checkpoint in the error and rejects bad names clearly', async () => {
    const store = new CheckpointStore({ dbName: freshDb() });
    const err = await rejection(store.load('no-such-model'));
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err.message).to.contain('no-such-model');

    for (const bad of ['', undefined, null, 42, {}]) {
      const e = await rejection(store.save(bad, 'k', null, { w: new Uint8Array(3) }));
      expect(e, String(bad)).to.be.instanceOf(CheckpointError);
      expect(e.message).to.match(/non-empty string/);
      expect(await rejection(store.load(bad))).to.be.instanceOf(CheckpointError);
    }
    const e = await rejection(store.save('x', 'k', null, { w: [1, 2, 3] }));
    expect(e).to.be.instanceOf(CheckpointError);
    expect(e.message).to.contain('"w"');
  });

  describe('damage is reported, never returned', () => {
    async function savedWithChunkKey() {
      const dbName = freshDb();
      const store = new CheckpointStore({ dbName, chunkBytes: 1000 });
      await store.save('net', 'state-dict', { v: 1 }, { head: randomBytes(100, 8), body: randomBytes(3500, 9) });
      await store.save('other', 'state-dict', null, { body: randomBytes(1200, 10) });
      const raw = rawStore(dbName);
      const manifest = await idb.get('m:net', raw);
      const key = manifest.blobs.body.chunks[2].key;
      return { store, raw, key, value: new Uint8Array(await idb.get(key, raw)) };
    }

    async function expectDamaged(store) {
      const err = await rejection(store.load('net'));
      expect(err).to.be.instanceOf(CheckpointError);
      expect(err.code).to.equal('corrupt');
      expect(err.message).to.contain('"net"');
      expect(err.message).to.contain('"body"');
      // the neighbour is unaffected
      expectBlobs((await store.load('other')).blobs, { body: randomBytes(1200, 10) });
      return err;
    }

    it('detects a chunk with altered bytes (CRC-32)', async () => {
      const { store, raw, key, value } = await savedWithChunkKey();
      const altered = value.slice();
      altered[17] ^= 0x01; // one bit
      await idb.set(key, altered.buffer, raw);
      const err = await expectDamaged(store);
      expect(err.message).to.match(/CRC/);
    });

    it('detects a truncated chunk', async () => {
      const { store, raw, key, value } = await savedWithChunkKey();
      await idb.set(key, value.slice(0, value.length - 1).buffer, raw);
      const err = await expectDamaged(store);
      expect(err.message).to.match(/bytes/);
    });

    it('detects a missing chunk and a chunk of the wrong type', async () => {
      const { store, raw, key } = await savedWithChunkKey();
      await idb.set(key, 'not bytes', raw);
      await expectDamaged(store);
      await idb.del(key, raw);
      const err = await expectDamaged(store);
      expect(err.message).to.match(/missing/);
    });

    it('detects a damaged manifest', async () => {
      const { store, raw } = await savedWithChunkKey();
      await idb.set('m:net', { name: 'net', blobs: 7 }, raw);
      const err = await rejection(store.load('net'));
      expect(err).to.be.instanceOf(CheckpointError);
      expect(err.message).to.contain('"net"');
      // garbage collection does not guess: the chunks of an unreadable manifest stay
      expect(await store.collectGarbage()).to.equal(0);
    });
  });

  it('reports a full disk with the size asked for and keeps the previous version', async () => {
    const dbName = freshDb();
    const before = { a: randomBytes(1500, 11), b: randomBytes(700, 12) };
    await new CheckpointStore({ dbName, chunkBytes: 1000 }).save('m', 'state-dict', { v: 1 }, before);

    const full = new CheckpointStore({ dbName, chunkBytes: 1000, simulateQuotaAfterBytes: 2500 });
    const err = await rejection(full.save('m', 'state-dict', { v: 2 }, { a: randomBytes(4000, 13), b: randomBytes(2000, 14) }));
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err.name).to.equal('QuotaExceededError');
    expect(err.code).to.equal('quota');
    expect(err.message).to.match(/storage is full/);
    expect(err.message).to.contain('6.0 kB');
    expect(err.message).to.contain('6000 bytes');
    expect(err.cause && err.cause.name).to.equal('QuotaExceededError');

    const got = await new CheckpointStore({ dbName }).load('m');
    expect(got.meta).to.deep.equal({ v: 1 });
    expectBlobs(got.blobs, before);
    await expectNoOrphans(dbName); // the partial new chunks were removed

    // a brand-new name that does not fit leaves nothing at all behind
    const err2 = await rejection(full.save('n', 'state-dict', null, { a: randomBytes(3000, 15) }));
    expect(err2).to.be.instanceOf(CheckpointError);
    expect(await full.exists('n')).to.equal(false);
    await expectNoOrphans(dbName);
  });

  it('fails cleanly at every cut point of a save (60 simulated quota cut points)', async function () {
    this.timeout(60_000);
    const dbName = freshDb();
    const chunkBytes = 700;
    let current = { gen: 0, blobs: { w: randomBytes(2100, 100), b: randomBytes(300, 101) } };
    await new CheckpointStore({ dbName, chunkBytes }).save('cut', 'k', { gen: 0 }, current.blobs);
    let failed = 0;
    let succeeded = 0;
    for (let i = 1; i <= 60; i++) {
      const next = { gen: i, blobs: { w: randomBytes(3000 + (i % 5) * 333, 2 * i), b: randomBytes(i * 37, 2 * i + 1) } };
      const total = next.blobs.w.length + next.blobs.b.length;
      const cut = Math.floor((i / 60) * total * 1.1) - 50; // from "nothing fits" to "everything fits"
      const store = new CheckpointStore({ dbName, chunkBytes, simulateQuotaAfterBytes: Math.max(0, cut) });
      try {
        await store.save('cut', 'k', { gen: i }, next.blobs);
        expect(cut).to.be.at.least(total);
        current = next;
        succeeded++;
      } catch (e) {
        expect(e).to.be.instanceOf(CheckpointError);
        expect(e.message).to.contain(`${total} bytes`);
        expect(cut).to.be.below(total);
        failed++;
      }
      const got = await store.load('cut');
      expect(got.meta).to.deep.equal({ gen: current.gen });
      expectBlobs(got.blobs, current.blobs);
      await expectNoOrphans(dbName);
    }
    console.log(`checkpoint quota cut points: ${failed} failed cleanly, ${succeeded} fitted`);
    expect(failed).to.be.greaterThan(40);
    expect(succeeded).to.be.greaterThan(0);
  });

  it('keeps only one version of chunks when a name is overwritten', async () => {
    const dbName = freshDb();
    const store = new CheckpointStore({ dbName, chunkBytes: 1000 });
    await store.save('keep', 'k', null, { w: randomBytes(4321, 20) });
    const sizes = [5000, 1200, 0, 9999, 3000];
    for (const [i, n] of sizes.entries()) {
      await store.save('m', 'k', { i }, { w: randomBytes(n, 30 + i), e: new Uint8Array(0) });
      const { present, referenced } = await chunkAccounting(dbName);
      expect(present).to.deep.equal(referenced);
      const mine = present.filter((k) => k.startsWith('c:m:'));
      expect(mine.length).to.equal(Math.ceil(n / 1000));
      const manifest = await idb.get('m:m', rawStore(dbName));
      for (const k of mine) expect(k.startsWith(`c:m:${manifest.version}:`)).to.equal(true);
      expect(present.filter((k) => k.startsWith('c:keep:')).length).to.equal(5);
    }
    const got = await store.load('m');
    expect(got.meta).to.deep.equal({ i: 4 });
    expectBlobs(got.blobs, { w: randomBytes(3000, 34), e: new Uint8Array(0) });
  });

  it('collects orphan chunks and nothing else', async () => {
    const dbName = freshDb();
    const store = new CheckpointStore({ dbName, chunkBytes: 1000 });
    await store.save('m', 'k', null, { w: randomBytes(2500, 40) });
    const raw = rawStore(dbName);
    await idb.set('c:m:dead-version:w:0', new Uint8Array(10).buffer, raw);
    await idb.set('c:gone:dead-version:w:0', new Uint8Array(10).buffer, raw);
    await idb.set('unrelated', 'left alone', raw);
    expect(await store.collectGarbage()).to.equal(2);
    expect(await store.collectGarbage()).to.equal(0);
    await expectNoOrphans(dbName);
    expect(await idb.get('unrelated', raw)).to.equal('left alone');
    expectBlobs((await store.load('m')).blobs, { w: randomBytes(2500, 40) });
    // save() collects first
    await idb.set('c:x:dead:w:0', new Uint8Array(10).buffer, raw);
    await store.save('y', 'k', null, {});
    await expectNoOrphans(dbName);
  });

  it('serializes concurrent saves and reads consistently during them', async () => {
    const dbName = freshDb();
    const a = new CheckpointStore({ dbName, chunkBytes: 2000 });
    const b = new CheckpointStore({ dbName, chunkBytes: 1500 });
    const A = { w: randomBytes(20_000, 50) };
    const B = { w: randomBytes(15_000, 51), v: randomBytes(10, 52) };
    await a.save('c', 'k', { who: 'first' }, { w: randomBytes(5000, 53) });
    const reads = [];
    const saves = Promise.all([a.save('c', 'k', { who: 'A' }, A), b.save('c', 'k', { who: 'B' }, B)]);
    for (let i = 0; i < 10; i++) reads.push(a.load('c'));
    await saves;
    for (const r of await Promise.all(reads)) expect(['first', 'A', 'B']).to.include(r.meta.who);
    const got = await a.load('c');
    expectBlobs(got.blobs, got.meta.who === 'A' ? A : B);
    await expectNoOrphans(dbName);
  });

  it('survives a worker killed at random points of a save (real terminate)', async function () {
    this.timeout(110_000);
    const dbName = freshDb();
    const name = 'killed';
    const chunkBytes = 16 * 1024;
    const store = new CheckpointStore({ dbName });

    /** Runs one save of `gen` in a fresh worker; terminates it `killAfterMs` after it starts saving (Infinity: never). */
    function runSave(gen, killAfterMs) {
      return new Promise((resolve, reject) => {
        const worker = new Worker(new URL('./checkpoint-kill-worker.js', import.meta.url), { type: 'module' });
        let finished = false;
        let timer;
        const end = (result) => { finished = true; clearTimeout(timer); worker.terminate(); resolve(result); };
        worker.onerror = (e) => { clearTimeout(timer); worker.terminate(); reject(new Error(`worker failed: ${e.message}`)); };
        worker.onmessage = (ev) => {
          const msg = ev.data;
          if (msg.type === 'saving' && Number.isFinite(killAfterMs)) {
            timer = setTimeout(() => { if (!finished) end({ killed: true }); }, killAfterMs);
          } else if (msg.type === 'saved') {
            end({ killed: false, ms: msg.ms });
          } else if (msg.type === 'error') {
            clearTimeout(timer); worker.terminate(); reject(new Error(`save failed in worker: ${msg.message}`));
          }
        };
        worker.postMessage({ dbName, name, chunkBytes, gen });
      });
    }

    async function check(expectGens) {
      const got = await store.load(name); // must load, whatever the moment of the kill
      const gen = got.meta.gen;
      expect(expectGens).to.include(gen);
      const want = content(gen);
      expect(got.meta).to.deep.equal(want.meta); // meta and blobs of ONE generation, never a mix
      expectBlobs(got.blobs, want.blobs);
      return gen;
    }

    // generation 1, saved completely; it also measures how long one save takes
    const first = await runSave(1, Infinity);
    const saveMs = first.ms;
    let gen = await check([1]);
    await store.collectGarbage();
    await expectNoOrphans(dbName);

    const maxDelay = Math.max(40, saveMs * 1.3);
    const trials = 36;
    const counts = { killedBeforeSwap: 0, killedAfterSwap: 0, completed: 0, orphansCollected: 0 };
    for (let t = 0; t < trials; t++) {
      const delay = Math.random() * maxDelay;
      const r = await runSave(gen + 1, delay);
      const now = await check(r.killed ? [gen, gen + 1] : [gen + 1]);
      if (!r.killed) counts.completed++;
      else if (now === gen) counts.killedBeforeSwap++;
      else counts.killedAfterSwap++;
      counts.orphansCollected += await store.collectGarbage();
      await expectNoOrphans(dbName);
      await check([now]); // collecting did not touch the live version
      gen = now;
    }
    console.log(
      `checkpoint kill test: ${trials} trials (one save ≈ ${saveMs.toFixed(1)} ms, kill delay 0-${maxDelay.toFixed(0)} ms): ` +
        `${counts.killedBeforeSwap} killed before the swap (old version loaded), ` +
        `${counts.killedAfterSwap} killed after it (new version loaded), ${counts.completed} completed; ` +
        `${counts.orphansCollected} orphan chunks collected`,
    );
    expect(counts.killedBeforeSwap + counts.killedAfterSwap).to.be.greaterThan(0);
  });
});
