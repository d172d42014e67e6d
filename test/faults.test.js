// Faults injected for real: an engine worker that crashes (an uncaught error
// in the worker), an engine replaced by sn.init() mid-call. Nothing may hang:
// every pending and later call rejects clearly, and sn.init() starts fresh.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { blobData } from './util.js';

/** Settles within `ms` or reports the promise as hanging (a hang is the defect under test, not slowness). */
const settled = (promise, ms = 20000) =>
  Promise.race([promise.then((v) => ({ value: v }), (e) => ({ error: e })), new Promise((r) => setTimeout(() => r({ hung: true }), ms))]);

const smallModel = () => {
  const model = sn.sequential([
    sn.layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  return model;
};

const blobs = (n) => {
  const { x, y } = blobData(n);
  return { x: sn.tensor(x, [n, 6]), y: sn.tensor(y, [n, 3]) };
};

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`errors are not device loss (${backend})`, () => {
    it('a tensor too large for the device fails alone, in the worker too; the engine and its tensors keep working', async () => {
      // Not awaiting init: the page does not know the device's limits yet, so the worker's own check is what refuses.
      sn.init({ backend });
      const kept = sn.tensor([1, 2, 3]);
      const huge = sn.zeros([1e9]);
      const err = await huge.data().then(() => null, (e) => e);
      expect(err?.message).to.match(/a tensor of shape \[1000000000\] needs 4,000,000,000 bytes, more than this engine's largest buffer/);
      expect(Array.from(await kept.add(1).data())).to.deep.equal([2, 3, 4]);
      // Once started, the page refuses at the user's line.
      expect(() => sn.arange(3e9)).to.throw(RangeError, /needs 12,000,000,000 bytes/);
      expect(await sn.ones([4, 4]).matmul(sn.ones([4, 1])).sum().item()).to.equal(16);
      expect(Array.from(await kept.data())).to.deep.equal([1, 2, 3]);
    });
  });

  describe(`a dead engine worker (${backend})`, () => {
    it('rejects every pending and later call clearly; sn.init() starts fresh; checkpoints stay intact', async () => {
      await sn.init({ backend });
      const model = smallModel();
      await model.save('indexeddb://fault-before-crash');
      const { x, y } = blobs(256);
      const seen = [];
      const fit = model.fit(x, y, { epochs: 1000, batchSize: 8, callbacks: { onEpochEnd: (e) => seen.push(e) } });
      while (!seen.length) await new Promise((r) => setTimeout(r, 10));
      const t = sn.randn([64, 64]);
      const pending = {
        fit,
        sync: sn.sync(),
        memory: sn.memory(),
        item: t.sum().item(),
        data: t.matmul(t).data(),
        save: model.save('indexeddb://fault-during-crash'),
        list: sn.checkpoints.list(),
      };
      sn._runtime()._crashWorker();
      // Calls the worker finished before it crashed may resolve; none may hang, and the fit was surely running.
      for (const [name, promise] of Object.entries(pending)) {
        const r = await settled(promise);
        expect(r.hung, `${name} hung`).to.equal(undefined);
        if (name === 'fit' || r.error) expect(r.error?.message, name).to.match(/engine worker failed.*injected engine crash.*sn\.init\(\)/s);
      }
      // Later calls reject at once with the same error.
      for (const later of [sn.sync(), sn.memory(), t.data(), sn.checkpoints.list(), model.evaluate(x, y)]) {
        const r = await settled(later);
        expect(r.error?.message).to.match(/engine worker failed/);
      }
      await sn.init({ backend });
      expect(await sn.tensor([1, 2]).add(1).data()).to.deep.equal(new Float32Array([2, 3]));
      expect(await sn.checkpoints.exists('fault-before-crash')).to.equal(true);
      const restored = await sn.loadModel('indexeddb://fault-before-crash');
      expect(restored.predict(sn.zeros([2, 6])).shape).to.deep.equal([2, 3]);
      await sn.checkpoints.delete('fault-before-crash');
      await sn.checkpoints.delete('fault-during-crash').catch(() => {});
    });

    it('sn.init() during a fit rejects the old fit clearly instead of orphaning it', async () => {
      await sn.init({ backend });
      const model = smallModel();
      const { x, y } = blobs(256);
      const seen = [];
      const fit = model.fit(x, y, { epochs: 1000, batchSize: 8, callbacks: { onEpochEnd: (e) => seen.push(e) } });
      while (!seen.length) await new Promise((r) => setTimeout(r, 10));
      const outcomes = [fit, sn.sync()].map((p) => settled(p));
      await sn.init({ backend });
      for (const outcome of outcomes) {
        const r = await outcome;
        expect(r.hung).to.equal(undefined);
        expect(r.error?.message).to.match(/sn\.init\(\) replaced the engine/);
      }
      expect(await sn.ones([3]).sum().item()).to.equal(3);
    });

    it('a crash while idle surfaces at the next call; the next sn.init() works', async () => {
      await sn.init({ backend });
      sn._runtime()._crashWorker();
      // The crash lands between two calls; poll until a call sees it.
      let err = null;
      for (let i = 0; i < 200 && !err; i++) err = await sn.sync().then(() => null, (e) => e);
      expect(err?.message).to.match(/engine worker failed/);
      await sn.init({ backend });
      expect(await sn.full([2], 4).sum().item()).to.equal(8);
    });
  });
}
