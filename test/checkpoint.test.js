// Checkpoints end to end, in real Chromium with real IndexedDB: sn.save/load
// (PyTorch style), model.save/sn.loadModel (Keras style), resume equivalence
// across a fresh worker (a page reload), fit's autosave, list/exists/delete,
// missing names, shape mismatches, damaged chunks, a full disk, and
// safetensors files in and out. Crash safety of the store itself (killing the
// worker mid-save) is covered in test/checkpoint-store.test.js.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { idb } from '../build/test/checkpoint-store.js';
import { blobData, expectClose, mulberry32, randomData, rejection } from './util.js';

const RUN = `ckpt-test-${Date.now().toString(36)}`;
/** The store the worker writes: idb-keyval database 'shadenet', object store 'checkpoints'. */
const rawStore = () => idb.createStore('shadenet', 'checkpoints');

class Net extends sn.nn.Module {
  constructor(hidden = 5) {
    super();
    this.fc1 = new sn.nn.Linear(4, hidden);
    this.relu = new sn.nn.ReLU();
    this.fc2 = new sn.nn.Linear(hidden, 3);
  }
  forward(x) {
    return this.fc2.forward(this.relu.forward(this.fc1.forward(x)));
  }
}

const valuesOf = (params) => Promise.all(params.map((p) => p.data()));

function expectSameValues(actual, expected, label, tol = { atol: 0, rtol: 0 }) {
  expect(actual.length).to.equal(expected.length);
  actual.forEach((a, i) => expectClose(a, expected[i], { ...tol, label: `${label} #${i}` }));
}

function maxDiff(a, b) {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

/** The shared blob problem as tensors. */
function problem(n, seed) {
  const { x, y } = blobData(n, seed);
  return { x: sn.tensor(x, [n, 6]), y: sn.tensor(y, [n, 3]) };
}

function kerasModel(optimizer = 'adam') {
  const model = sn.sequential([
    sn.layers.dense({ units: 8, activation: 'relu', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: optimizer === 'adam-instance' ? new sn.optim.Adam(model.parameters(), { lr: 0.02, betas: [0.8, 0.99] }) : optimizer, loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  return model;
}

const FIT = { batchSize: 8, shuffle: true };
const RESUME_TOL = { atol: 1e-6, rtol: 1e-5 };

/** One PyTorch-style training step of net on (x, target) with opt. */
function torchStep(net, opt, x, target) {
  opt.zeroGrad();
  net.forward(x).sub(target).square().mean().backward();
  opt.step();
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  const url = (name) => `indexeddb://${RUN}-${backend}-${name}`;

  describe(`checkpoints (${backend})`, () => {
    before(() => sn.init({ backend }));

    describe('PyTorch style: sn.save / sn.load', () => {
      it('round-trips a module as its state dict; loadStateDict into a fresh module gives the same outputs', async () => {
        const net = new Net();
        const info = await sn.save(net, url('module'));
        expect(info.kind).to.equal('state-dict');
        expect(info.bytes).to.be.above(4 * (5 * 4 + 5 + 3 * 5 + 3));
        const sd = await sn.load(url('module'));
        expect(Object.keys(sd)).to.deep.equal(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
        expect(sd['fc1.weight'].shape).to.deep.equal([5, 4]);
        expectSameValues(await valuesOf(Object.values(sd)), await valuesOf(Object.values(net.stateDict())), 'state dict');

        const fresh = new Net();
        fresh.loadStateDict(sd);
        const x = sn.tensor(randomData(mulberry32(3), 2 * 4), [2, 4]);
        expectClose(await fresh.forward(x).data(), await net.forward(x).data(), { atol: 0, rtol: 0, label: 'outputs' });
      });

      it('round-trips { model, optimizer, epoch, ...json } with Adam moments and step counts', async () => {
        const net = new Net();
        const opt = new sn.optim.Adam(net.parameters(), { lr: 0.05 });
        const x = sn.tensor(randomData(mulberry32(4), 6 * 4), [6, 4]);
        const target = sn.tensor(randomData(mulberry32(5), 6 * 3), [6, 3]);
        for (let i = 0; i < 3; i++) torchStep(net, opt, x, target);
        const info = await sn.save({ model: net, optimizer: opt, epoch: 7, notes: { tag: 'a', list: [1, null, true] } }, url('object'));
        expect(info.kind).to.equal('object');

        const ck = await sn.load(url('object'));
        expect(ck.epoch).to.equal(7);
        expect(ck.notes).to.deep.equal({ tag: 'a', list: [1, null, true] });
        expect(Object.keys(ck.model)).to.deep.equal(Object.keys(net.stateDict()));
        expect(ck.optimizer.param_groups[0].lr).to.equal(0.05);
        expect(ck.optimizer.param_groups[0].params).to.deep.equal([0, 1, 2, 3]);
        expect(await ck.optimizer.state[0].step.item()).to.equal(3);
        expect(ck.optimizer.state[0].exp_avg).to.be.instanceOf(sn.Tensor);
        const live = opt.stateDict();
        for (const i of [0, 1, 2, 3]) {
          expectClose(await ck.optimizer.state[i].exp_avg.data(), await live.state[i].exp_avg.data(), { atol: 0, rtol: 0, label: `exp_avg ${i}` });
          expectClose(await ck.optimizer.state[i].exp_avg_sq.data(), await live.state[i].exp_avg_sq.data(), { atol: 0, rtol: 0, label: `exp_avg_sq ${i}` });
        }
      });

      it('resumes exactly across a fresh worker: 2 steps + save + reload + 2 steps equals 4 steps', async () => {
        const xs = randomData(mulberry32(6), 8 * 4);
        const ts = randomData(mulberry32(7), 8 * 3);
        const data = () => [sn.tensor(xs, [8, 4]), sn.tensor(ts, [8, 3])];

        sn.manualSeed(11);
        const straight = new Net();
        const opt = new sn.optim.Adam(straight.parameters(), { lr: 0.05 });
        let [x, t] = data();
        for (let i = 0; i < 4; i++) torchStep(straight, opt, x, t);
        const expected = await valuesOf(straight.parameters());

        sn.manualSeed(11);
        const first = new Net();
        const opt1 = new sn.optim.Adam(first.parameters(), { lr: 0.05 });
        [x, t] = data();
        for (let i = 0; i < 2; i++) torchStep(first, opt1, x, t);
        const halfway = await valuesOf(first.parameters());
        await sn.save({ model: first, optimizer: opt1, step: 2 }, url('torch-resume'));

        await sn.init({ backend }); // a fresh worker: what a page reload gives
        sn.manualSeed(99); // different initial weights: everything must come from the checkpoint
        const resumed = new Net();
        const opt2 = new sn.optim.Adam(resumed.parameters(), { lr: 0.05 });
        const ck = await sn.load(url('torch-resume'));
        resumed.loadStateDict(ck.model);
        opt2.loadStateDict(ck.optimizer);
        expect(ck.step).to.equal(2);
        [x, t] = data();
        for (let i = 0; i < 2; i++) torchStep(resumed, opt2, x, t);
        const got = await valuesOf(resumed.parameters());
        console.log(`[${backend}] PyTorch-style resume: max |resumed - straight| = ${maxDiff(got, expected)}`);
        expectSameValues(got, expected, 'resumed weights', RESUME_TOL);
        expect(maxDiff(halfway, expected)).to.be.above(1e-3); // the last two steps moved the weights
      });

      it('rejects a missing name, naming it, and other URL schemes', async () => {
        const missing = `${RUN}-${backend}-no-such-checkpoint`;
        const e = await rejection(sn.load(`indexeddb://${missing}`));
        expect(e.message).to.include(`"${missing}"`);
        expect(e.message).to.match(/no checkpoint/);
        expect((await rejection(sn.save(new Net(), 'localstorage://x'))).message).to.match(/indexeddb:\/\/name/);
        expect((await rejection(sn.load('https://example.com/w.bin'))).message).to.match(/indexeddb:\/\/name/);
        expect((await rejection(sn.save({ f: () => 1 }, url('bad')))).message).to.match(/cannot store a function at 'f'/);
      });

      it('a checkpoint whose shapes do not fit names the parameter and both shapes', async () => {
        await sn.save(new Net(5), url('hidden5'));
        const sd = await sn.load(url('hidden5'));
        const small = new Net(2);
        const before = await valuesOf(small.parameters());
        const e = (() => { try { small.loadStateDict(sd); } catch (err) { return err; } })();
        expect(e, 'loadStateDict should throw').to.be.instanceOf(Error);
        expect(e.message).to.include("'fc1.weight'");
        expect(e.message).to.include('[5, 4]');
        expect(e.message).to.include('[2, 4]');
        expectSameValues(await valuesOf(small.parameters()), before, 'untouched'); // nothing copied
      });
    });

    describe('Keras style: model.save / sn.loadModel', () => {
      it('restores architecture, weights, compile settings, optimizer state and epoch', async () => {
        sn.manualSeed(3);
        const model = kerasModel('adam-instance');
        const { x, y } = problem(24, 8);
        await model.fit(x, y, { ...FIT, epochs: 2 });
        expect(model.epoch).to.equal(2);
        const info = await model.save(url('keras'));
        expect(info.kind).to.equal('keras-model');

        const loaded = await sn.loadModel(url('keras'));
        expect(loaded.epoch).to.equal(2);
        expect(loaded.toJSON()).to.deep.equal(model.toJSON());
        expect(loaded.optimizer).to.be.instanceOf(sn.optim.Adam);
        expect(loaded.optimizer.paramGroups[0].lr).to.equal(0.02);
        expect(loaded.optimizer.paramGroups[0].betas).to.deep.equal([0.8, 0.99]);
        const stepsOf = (opt) => Promise.all([...opt.state.values()].map((s) => s.step.item()));
        const steps = await stepsOf(loaded.optimizer);
        expect(steps).to.deep.equal(await stepsOf(model.optimizer));
        expect(steps[0]).to.equal(2 * 3); // 24 samples, batch 8, 2 epochs
        expectSameValues(await valuesOf(loaded.parameters()), await valuesOf(model.parameters()), 'weights');
        expectClose(await loaded.predict(x).data(), await model.predict(x).data(), { atol: 0, rtol: 0, label: 'predict' });
        const [a, b] = [await loaded.evaluate(x, y), await model.evaluate(x, y)];
        expect(a.accuracy).to.equal(b.accuracy);
        expect((await rejection(sn.loadModel(url('module')))).message).to.match(/not a Keras model/);
      });

      it('resumes exactly across a fresh worker: 2 epochs + save + reload + loadModel + 2 epochs equals 4 epochs', async () => {
        const run = async (epochs, initialEpoch, model) => {
          const { x, y } = problem(40, 9);
          await model.fit(x, y, { ...FIT, epochs, initialEpoch });
          return model;
        };
        await sn.init({ backend });
        sn.manualSeed(21);
        const straight = await run(4, 0, kerasModel());
        const expected = await valuesOf(straight.parameters());

        await sn.init({ backend });
        sn.manualSeed(21);
        const first = await run(2, 0, kerasModel());
        await first.save(url('keras-resume'));
        const halfway = await valuesOf(first.parameters());

        await sn.init({ backend }); // a page reload
        sn.manualSeed(21); // the same seed gives fit the same shuffling stream
        const loaded = await sn.loadModel(url('keras-resume'));
        expect(loaded.epoch).to.equal(2);
        await run(4, loaded.epoch, loaded);
        const got = await valuesOf(loaded.parameters());
        console.log(`[${backend}] Keras resume: max |resumed - straight| = ${maxDiff(got, expected)} (weights moved ${maxDiff(halfway, expected)} in epochs 2-3)`);
        expectSameValues(got, expected, 'resumed weights', RESUME_TOL);

        // The test can tell: resuming with a fresh optimizer (moments and steps lost) lands elsewhere.
        await sn.init({ backend });
        sn.manualSeed(21);
        const amnesic = await sn.loadModel(url('keras-resume'));
        amnesic.compile({ optimizer: 'adam', loss: 'categorical_crossentropy' });
        await run(4, 2, amnesic);
        expect(maxDiff(await valuesOf(amnesic.parameters()), expected)).to.be.above(1e-4);
      });

      it("fit's checkpoint option autosaves every N epochs, and resuming from it matches the uninterrupted run", async () => {
        const name = url('autosave');
        await sn.checkpoints.delete(name);
        sn.manualSeed(5);
        const model = kerasModel();
        const { x, y } = problem(20, 10); // 3 batches of 8, 8, 4
        const seen = [];
        await model.fit(x, y, {
          ...FIT, epochs: 3, checkpoint: { url: name, everyEpochs: 2 },
          callbacks: { onEpochEnd: async (epoch) => { seen.push([epoch, await sn.checkpoints.exists(name)]); } },
        });
        expect(seen).to.deep.equal([[0, false], [1, false], [2, true]]); // saved after epoch index 1, i.e. 2 epochs
        const final = await valuesOf(model.parameters());

        sn.manualSeed(5);
        const loaded = await sn.loadModel(name);
        expect(loaded.epoch).to.equal(2);
        expect(await [...loaded.optimizer.state.values()][0].step.item()).to.equal(2 * 3); // what the device had counted when the autosave ran
        const data = problem(20, 10);
        await loaded.fit(data.x, data.y, { ...FIT, epochs: 3, initialEpoch: loaded.epoch });
        expectSameValues(await valuesOf(loaded.parameters()), final, 'resumed from autosave', RESUME_TOL);
        expect((await rejection(model.fit(x, y, { epochs: 1, checkpoint: { url: 'mem://x' } }))).message).to.match(/indexeddb:\/\/name/);
      });
    });

    describe('checkpoints.list / exists / delete', () => {
      it('lists names, sizes, times and kinds; deletes', async () => {
        const a = `${RUN}-${backend}-list-a`;
        const b = `${RUN}-${backend}-list-b`;
        const t0 = Date.now();
        await sn.save(new Net(), `indexeddb://${a}`);
        await kerasModel().save(`indexeddb://${b}`);
        const mine = (await sn.checkpoints.list()).filter((c) => c.name === a || c.name === b);
        expect(mine.map((c) => [c.name, c.kind])).to.deep.equal([[a, 'state-dict'], [b, 'keras-model']]);
        for (const c of mine) {
          expect(c.bytes).to.be.above(100);
          expect(Date.parse(c.savedAt)).to.be.within(t0 - 1000, Date.now() + 1000);
        }
        expect(await sn.checkpoints.exists(a)).to.equal(true);
        expect(await sn.checkpoints.exists(`indexeddb://${b}`)).to.equal(true);
        expect(await sn.checkpoints.delete(`indexeddb://${a}`)).to.equal(true);
        expect(await sn.checkpoints.delete(a)).to.equal(false);
        expect(await sn.checkpoints.exists(a)).to.equal(false);
        expect((await sn.checkpoints.list()).map((c) => c.name)).to.include(b).and.not.include(a);
        expect((await rejection(sn.load(`indexeddb://${a}`))).message).to.include(a);
      });
    });

    describe('damage and full disks', () => {
      it('refuses a checkpoint with a damaged chunk, with a clear error', async () => {
        const name = `${RUN}-${backend}-damaged`;
        await sn.save(new Net(), `indexeddb://${name}`);
        const store = rawStore();
        const manifest = await idb.get(`m:${name}`, store);
        const chunk = manifest.blobs.tensors.chunks[0];
        const bytes = new Uint8Array(await idb.get(chunk.key, store));
        bytes[bytes.length - 3] ^= 0x40; // one bit in the tensor data
        await idb.set(chunk.key, bytes.buffer, store);
        const e = await rejection(sn.load(`indexeddb://${name}`));
        expect(e.message).to.include(`"${name}" is damaged`);
        expect(e.message).to.match(/CRC-32/);
      });

      it('a save that hits the quota fails clearly and leaves the previous checkpoint loadable', async () => {
        // simulateQuotaAfterBytes is the store's test hook, passed through sn.save.
        const net = new Net();
        const good = await valuesOf(net.parameters());
        await sn.save(net, url('quota'));
        const bigger = new Net(64);
        const e = await rejection(sn.save(bigger, url('quota'), { simulateQuotaAfterBytes: 64 }));
        expect(e.name).to.equal('QuotaExceededError');
        expect(e.message).to.match(/storage is full/);
        expect(e.message).to.include(`needs`);
        const sd = await sn.load(url('quota'));
        expectSameValues(await valuesOf(Object.values(sd)), good, 'previous checkpoint');
      });
    });

    describe('safetensors', () => {
      it('save -> load into a fresh module of the same architecture gives the same outputs', async () => {
        const net = new Net();
        const bytes = await sn.safetensors.save(net);
        expect(bytes).to.be.instanceOf(Uint8Array);
        const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
        const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
        expect(header.__metadata__).to.deep.equal({ format: 'pt' });
        expect(header['fc1.weight']).to.deep.include({ dtype: 'F32', shape: [5, 4] });
        expect(header['fc2.bias']).to.deep.include({ dtype: 'F32', shape: [3] });

        const sd = await sn.safetensors.load(bytes);
        const fresh = new Net();
        fresh.loadStateDict(sd);
        const x = sn.tensor(randomData(mulberry32(12), 3 * 4), [3, 4]);
        expectClose(await fresh.forward(x).data(), await net.forward(x).data(), { atol: 0, rtol: 0, label: 'outputs' });
        expect(bytes.length, 'the caller keeps its bytes by default').to.equal(8 + n + 4 * (20 + 5 + 15 + 3));

        const moved = bytes.slice();
        await sn.safetensors.load(moved, { transfer: true });
        expect(moved.byteLength, 'transfer moves the buffer').to.equal(0);
        expect((await rejection(sn.safetensors.load(bytes.subarray(0, 20)))).name).to.equal('SafetensorsError');
      });

      it('loads a hand-made PyTorch-style file (F32 and F16) into an sn.nn.Linear-based module', async () => {
        class Head extends sn.nn.Module {
          constructor() {
            super();
            this.fc = new sn.nn.Linear(4, 3);
            this.out = new sn.nn.Linear(3, 2, { bias: false });
          }
          forward(x) { return this.out.forward(this.fc.forward(x)); }
        }
        // As safetensors.torch.save_file writes it: {"format":"pt"} metadata, offsets contiguous,
        // header padded with spaces to a multiple of 8.
        const json =
          '{"__metadata__":{"format":"pt"},' +
          '"fc.bias":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},' +
          '"fc.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[12,60]},' +
          '"out.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[60,72]}}';
        const header = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
        const bias = [0.5, -1, 2];
        const weight = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1]; // fc.weight[o][i], PyTorch's [out, in]
        const f16 = [0x3c00, 0xb800, 0x4000, 0x0000, 0x3400, 0xbc00]; // 1, -0.5, 2, 0, 0.25, -1
        const file = new Uint8Array(8 + header.length + 72);
        const view = new DataView(file.buffer);
        view.setBigUint64(0, BigInt(header.length), true);
        file.set(new TextEncoder().encode(header), 8);
        const base = 8 + header.length;
        bias.forEach((v, i) => view.setFloat32(base + 4 * i, v, true));
        weight.forEach((v, i) => view.setFloat32(base + 12 + 4 * i, v, true));
        f16.forEach((v, i) => view.setUint16(base + 60 + 2 * i, v, true));

        const sd = await sn.safetensors.load(file);
        expect(Object.keys(sd).sort()).to.deep.equal(['fc.bias', 'fc.weight', 'out.weight']);
        expect(sd['out.weight'].dtype).to.equal('float32');
        const head = new Head();
        head.loadStateDict(sd);
        const x = [[1, 2, 3, 4], [-1, 0, 0.5, 2]];
        // by hand: h = W x + b; y = out.weight h
        const expected = x.flatMap(([a, b, c, d]) => {
          const h = [a + 0.5, b - 1, c + d + 2];
          return [h[0] - 0.5 * h[1] + 2 * h[2], 0.25 * h[1] - h[2]];
        });
        expectClose(await head.forward(sn.tensor(x)).data(), expected, { label: 'forward' });
      });
    });
  });
}
