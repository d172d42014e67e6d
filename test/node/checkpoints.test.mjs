// Checkpoints as files under Node (no IndexedDB): file:// URLs and plain
// paths, the same API as indexeddb://, atomic saves, damage reported.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import * as sn from 'shadenet';
import { blobData } from '../numeric.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const N = 64;
const { x: xData, y: yData } = blobData(N, 5);

function kerasModel() {
  const model = sn.sequential([
    sn.layers.dense({ units: 8, activation: 'tanh', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  return model;
}

describe('checkpoints as files', () => {
  let dir;
  const at = (...parts) => join(dir, ...parts);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shadenet-ckpt-'));
    await sn.init({ backend: 'cpu' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('model.save to a file:// URL and sn.loadModel give back the same model, optimizer state included', async () => {
    sn.manualSeed(1);
    const model = kerasModel();
    const x = sn.tensor(xData, [N, 6]);
    const y = sn.tensor(yData, [N, 3]);
    await model.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false });
    const url = pathToFileURL(at('keras model')).href; // a space: the URL is percent-encoded
    const info = await model.save(url);
    assert.equal(info.kind, 'keras-model');
    assert.equal(info.name, url);

    // A directory with the manifest and one safetensors file, which is the model's state dict.
    const files = readdirSync(at('keras model')).sort();
    assert.equal(files.length, 2);
    assert.equal(files[0], 'checkpoint.json');
    assert.match(files[1], /^tensors-[0-9a-f-]{36}\.safetensors$/);
    const manifest = JSON.parse(readFileSync(at('keras model', 'checkpoint.json'), 'utf8'));
    assert.equal(manifest.kind, 'keras-model');
    const tensors = await sn.safetensors.load(readFileSync(at('keras model', files[1])));
    assert.ok(Object.keys(tensors).length >= 4, Object.keys(tensors).join());

    const loaded = await sn.loadModel(url);
    assert.deepEqual(await loaded.predict(x).data(), await model.predict(x).data());
    // Same optimizer state: one more identical epoch on each stays identical.
    await model.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false });
    await loaded.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false });
    assert.deepEqual(await loaded.predict(x).data(), await model.predict(x).data());
  });

  it('sn.save / sn.load with a relative path, and checkpoints.exists / list / delete', async () => {
    sn.manualSeed(2);
    const net = new sn.nn.Linear(6, 3);
    const optimizer = new sn.optim.Adam(net.parameters(), { lr: 0.01 });
    net.forward(sn.tensor(xData, [N, 6])).square().mean().backward();
    optimizer.step();
    const path = relative(process.cwd(), at('runs', 'linear'));
    await sn.save({ model: net, optimizer, epoch: 3 }, path);
    const back = await sn.load(path);
    assert.equal(back.epoch, 3);
    assert.deepEqual(Object.keys(back.model), ['weight', 'bias']);
    assert.deepEqual(await back.model.weight.data(), await net.weight.data());
    assert.equal(await back.optimizer.state[0].step.item(), 1);
    assert.equal(await optimizer.stateDict().state[0].step.item(), 1);

    assert.equal(await sn.checkpoints.exists(path), true);
    await sn.save(net, at('runs', 'second'));
    const listed = await sn.checkpoints.list(at('runs'));
    assert.deepEqual(listed.map((c) => [c.name, c.kind]), [[at('runs', 'linear'), 'object'], [at('runs', 'second'), 'state-dict']]);
    assert.ok(listed.every((c) => c.bytes > 0 && !Number.isNaN(Date.parse(c.savedAt))));
    assert.equal(await sn.checkpoints.delete(path), true);
    assert.equal(await sn.checkpoints.exists(path), false);
    assert.equal(existsSync(at('runs', 'linear')), false);
    assert.equal(await sn.checkpoints.delete(path), false);
    await assert.rejects(sn.load(path), /no checkpoint at/);
  });

  it("TF.js's relative file:// form names a path under the working directory", async () => {
    const rel = relative(process.cwd(), at('tfjs-style'));
    await sn.save({ n: 1 }, `file://${rel}`);
    assert.ok(existsSync(at('tfjs-style', 'checkpoint.json')));
    assert.deepEqual(await sn.load(at('tfjs-style')), { n: 1 });
  });

  it('fit autosaves to a path every epoch', async () => {
    sn.manualSeed(3);
    const model = kerasModel();
    await model.fit(sn.tensor(xData, [N, 6]), sn.tensor(yData, [N, 3]), { epochs: 2, batchSize: 32, checkpoint: { url: at('auto') } });
    const loaded = await sn.loadModel(at('auto'));
    const x = sn.tensor(xData, [N, 6]);
    assert.deepEqual(await loaded.predict(x).data(), await model.predict(x).data());
  });

  it('a new save replaces the old version and removes what crashed saves left; load reads the manifest it names', async () => {
    const loc = at('replace');
    await sn.save({ v: sn.full([5], 1) }, loc);
    const first = readdirSync(loc).filter((f) => f.endsWith('.safetensors'));
    // What a save that died before its manifest swap leaves behind:
    writeFileSync(join(loc, 'tensors-00000000-0000-4000-8000-000000000000.safetensors'), 'partial');
    writeFileSync(join(loc, 'checkpoint.json.00000000-0000-4000-8000-000000000000.tmp'), '{"partial');
    assert.deepEqual(Array.from(await (await sn.load(loc)).v.data()), [1, 1, 1, 1, 1]);
    await sn.save({ v: sn.full([5], 2) }, loc);
    const files = readdirSync(loc).sort();
    assert.equal(files.length, 2, files.join());
    assert.ok(!files.includes(first[0]), 'the old version is gone');
    assert.deepEqual(Array.from(await (await sn.load(loc)).v.data()), [2, 2, 2, 2, 2]);
  });

  it('damage is reported, never returned', async () => {
    const loc = at('damaged');
    await sn.save({ v: sn.arange(64).float() }, loc);
    const blob = join(loc, readdirSync(loc).find((f) => f.endsWith('.safetensors')));
    const bytes = readFileSync(blob);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(blob, bytes);
    await assert.rejects(sn.load(loc), /is damaged: blob "tensors" .* fails its CRC-32 check/);
    writeFileSync(blob, bytes.subarray(0, 10));
    await assert.rejects(sn.load(loc), /has 10 bytes, expected/);
    rmSync(blob);
    await assert.rejects(sn.load(loc), /is missing/);
    writeFileSync(join(loc, 'checkpoint.json'), '{"format": "shadenet-checkpoint-files", "version": "x", "kind": "object", "blobs": {"tensors": {"file": "../../etc/passwd", "bytes": 1, "crc32": 0}}}');
    await assert.rejects(sn.load(loc), /malformed entry for blob "tensors"/);
    writeFileSync(join(loc, 'checkpoint.json'), 'not json');
    await assert.rejects(sn.load(loc), /checkpoint.json is not JSON/);
    assert.equal(await sn.checkpoints.delete(loc), true, 'a damaged checkpoint can still be deleted');
  });

  it('bad locations are rejected, naming what is expected', async () => {
    await assert.rejects(sn.load('indexeddb://x'), /no IndexedDB in Node; give a file:\/\/ URL or a path/);
    await assert.rejects(kerasModel().save('https://example.com/m'), /expected a file:\/\/ URL or a path/);
    await assert.rejects(sn.checkpoints.exists(''), /expected a file:\/\/ URL or a path/);
  });

  it('a process killed while saving leaves the previous version or the new one, whole', { timeout: 120000 }, async () => {
    const loc = at('killed');
    const saver = `
      import * as sn from 'shadenet';
      await sn.init({ backend: 'cpu' });
      for (let i = 1; ; i++) {
        await sn.save({ i, v: sn.full([50000], i) }, process.argv[1]);
        console.log(i);
      }`;
    for (let trial = 0; trial < 4; trial++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', saver, loc], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      let killing = false;
      // Kill once some saves completed and the next is under way, at a different point each trial.
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.stdout.on('data', (d) => {
        out += d;
        if (!killing && out.split('\n').length >= 3 + trial) killing = setTimeout(() => child.kill('SIGKILL'), 3 * trial);
      });
      assert.equal(await exited, null, 'the saver was killed, not ended on its own');
      const done = out.trim().split('\n').map(Number);
      const back = await sn.load(loc);
      assert.ok(back.i >= done.at(-1) && back.i <= done.at(-1) + 1, `loaded save ${back.i} after ${done.at(-1)} completed`);
      assert.deepEqual(new Set(await back.v.data()), new Set([back.i]));
    }
  });
});
