// Soak: thousands of imperative PyTorch-style steps (replayed as step plans, with reads),
// then repeated Keras fit, evaluate and predict, and checkpoint saves and loads, with no
// dispose, tidy or forced garbage collection in the loops, on every backend. sn.memory() is
// sampled along the way twice: as it is (what waits for the page's garbage collector comes and
// goes, so those samples must only stay bounded), and after a collection forced at the sample,
// outside the steps, which leaves exactly what the page still holds: those samples must stay
// flat, the last one within a small margin of the first after warm-up. The samples are printed
// for the record. (The engine cannot keep tensors by accident: making one outside a scope throws,
// test/lazy-bookkeeping.test.js.)
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { forceGC } from './util.js';

/** Imperative steps per backend, and how often they are sampled (the TypeScript backend is the slow one). */
const STEPS = { webgpu: 3000, wasm: 3000, cpu: 1000 };
const SAMPLE_EVERY = { webgpu: 250, wasm: 250, cpu: 125 };

/** sn.memory() as it is, then after the page's garbage collector ran. */
async function sample(raw, settled) {
  raw.push(await sn.memory());
  await forceGC();
  settled.push(await sn.memory());
}

/** Device bytes in use: allocated less pooled (the wasm heap's allocatedBytes is a high-water mark, as WebAssembly memory never shrinks). */
const inUse = (m) => m.allocatedBytes - m.pooledBytes;
const show = (samples) => samples.map((m) => `${m.liveTensors}t/${(inUse(m) / 1024).toFixed(0)}KiB`).join(' ');

function expectFlat(label, raw, settled) {
  console.log(`soak ${label}: as sampled ${show(raw)}; after GC ${show(settled)}`);
  const first = settled[0];
  const last = settled[settled.length - 1];
  expect(last.liveTensors, 'live tensors after GC').to.be.at.most(first.liveTensors + 2);
  // A few KiB: a sweep that leaked its three scalar sums (fixed) grew 0.75 KiB a fit epoch on WebGPU.
  expect(inUse(last), 'device bytes after GC').to.be.at.most(inUse(first) + 4096);
  // Without a forced collection: bounded by how often the page's collector runs, not growing with the steps.
  for (const m of raw) {
    expect(m.liveTensors, 'live tensors as sampled').to.be.below(first.liveTensors + 4000);
    expect(inUse(m), 'device bytes as sampled').to.be.below(inUse(first) + 16 * 2 ** 20);
  }
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`soak (${backend})`, () => {
    before(async () => {
      await sn.init({ backend });
      sn.manualSeed(5);
    });

    it(`${STEPS[backend]} imperative steps, replayed, with reads, keep sn.memory() flat`, async function () {
      this.timeout(120000);
      const model = new sn.nn.Sequential(new sn.nn.Linear(8, 32), new sn.nn.ReLU(), new sn.nn.Linear(32, 1));
      const opt = new sn.optim.Adam(model.parameters(), { lr: 1e-2 });
      const lossFn = new sn.nn.MSELoss();
      const x = sn.randn([64, 8]);
      const y = x.sum(1, true).tanh();
      const raw = [];
      const settled = [];
      let first = 0;
      let last = 0;
      const every = SAMPLE_EVERY[backend];
      for (let step = 1; step <= STEPS[backend]; step++) {
        const loss = lossFn.forward(model.forward(x), y);
        opt.zeroGrad();
        loss.backward();
        opt.step();
        if (step % 50 === 0) {
          const v = await loss.item();
          if (step === 50) first = v;
          last = v;
        }
        // The first samples warm up (pools fill, the first garbage collections run).
        if (step % every === 0 && step > every) await sample(raw, settled);
      }
      expect(last).to.be.below(first);
      // The steps replayed as a plan (worker/replay.ts): the soak covers replayed loops.
      const { loop } = await sn._runtime().call((e) => e._stepPlans(true));
      expect(loop.replayed).to.be.above(STEPS[backend] / 2);
      expectFlat(`imperative ${backend}`, raw, settled);
    });

    it('repeated fit, evaluate and predict keep sn.memory() flat', async function () {
      this.timeout(120000);
      const model = sn.sequential([
        sn.layers.dense({ units: 16, activation: 'relu', inputShape: [4] }),
        sn.layers.dense({ units: 4, activation: 'softmax' }),
      ]);
      model.compile({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] });
      const x = sn.randn([128, 4]);
      const y = x.argmax(1);
      const raw = [];
      const settled = [];
      for (let round = 0; round < 12; round++) {
        await model.fit(x, y, { epochs: 2, batchSize: 32, validationSplit: 0.25 });
        await model.evaluate(x, y, { batchSize: 32 });
        for (let i = 0; i < 5; i++) await model.predict(x).data();
        if (round >= 2) await sample(raw, settled);
      }
      expectFlat(`fit/evaluate/predict ${backend}`, raw, settled);
    });

    it('repeated checkpoint saves and loads keep sn.memory() flat', async function () {
      this.timeout(120000);
      const net = new sn.nn.Sequential(new sn.nn.Linear(8, 16), new sn.nn.ReLU(), new sn.nn.Linear(16, 2));
      const opt = new sn.optim.Adam(net.parameters(), { lr: 1e-2 });
      const x = sn.randn([32, 8]);
      const url = `indexeddb://soak-${backend}-${Date.now()}`;
      const raw = [];
      const settled = [];
      for (let round = 0; round < 12; round++) {
        opt.zeroGrad();
        net.forward(x).square().mean().backward();
        opt.step();
        await sn.save({ model: net, optimizer: opt }, url);
        const ck = await sn.load(url);
        net.loadStateDict(ck.model);
        opt.loadStateDict(ck.optimizer);
        if (round >= 2) await sample(raw, settled);
      }
      await sn.checkpoints.delete(url);
      expectFlat(`checkpoints ${backend}`, raw, settled);
    });
  });
}
