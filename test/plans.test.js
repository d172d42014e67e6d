// Step plans (worker/plan.ts): fit's steps recorded once and replayed must give exactly what
// op-by-op execution gives, on every backend. The engine's internal switch turns plans off
// for the comparison and reports how many steps were recorded, replayed or refused.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { mulberry32 } from './util.js';

const stepPlans = (on) => sn._runtime().call((e) => e._stepPlans(on));

/** Random features and one-hot labels of `classes` classes. */
function data(n, features, classes, seed) {
  const rand = mulberry32(seed);
  const x = Float32Array.from({ length: n * features }, () => rand() * 2 - 1);
  const y = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) y[i * classes + Math.floor(rand() * classes)] = 1;
  return { x: sn.tensor(x, [n, features]), y: sn.tensor(y, [n, classes]) };
}

/** Trains a fresh model (same seed, so the same initial weights) with plans on or off; its weights and history. */
async function train(plans, make, x, y, opts) {
  await stepPlans(plans);
  const before = await stepPlans(plans);
  sn.manualSeed(11);
  const model = make();
  const history = await model.fit(x, y, opts);
  const after = await stepPlans(true);
  const weights = await Promise.all(model.getWeights().map((w) => w.data()));
  return { weights, history: history.history, recorded: after.recorded - before.recorded, replayed: after.replayed - before.replayed, refused: after.refused - before.refused };
}

/** Plans on and off give bit-identical weights and logs; with plans on, most steps were replays. */
async function expectSameWithAndWithout(make, x, y, opts) {
  const off = await train(false, make, x, y, opts);
  const on = await train(true, make, x, y, opts);
  expect(off.recorded + off.replayed + off.refused).to.equal(0);
  expect(on.refused).to.equal(0);
  expect(on.replayed).to.be.above(on.recorded);
  expect(on.history).to.deep.equal(off.history);
  expect(on.weights.length).to.equal(off.weights.length);
  on.weights.forEach((w, i) => expect(Array.from(w), `weight ${i}`).to.deep.equal(Array.from(off.weights[i])));
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`Step plans (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('fit with plans gives exactly the weights and logs of op-by-op steps: dropout, shuffling, a remainder batch, validation, Adam', async () => {
      const { x, y } = data(101, 13, 4, 5);
      const make = () => {
        const m = sn.sequential([
          sn.layers.dense({ units: 37, activation: 'relu', inputShape: [13] }),
          sn.layers.dropout({ rate: 0.3 }),
          sn.layers.dense({ units: 4, activation: 'softmax' }),
        ]);
        m.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
        return m;
      };
      await expectSameWithAndWithout(make, x, y, { epochs: 3, batchSize: 16, validationSplit: 0.2, shuffle: true });
    });

    it('a plan recorded in the first epoch replays in every later one, shuffled or not, with validation plans kept too', async () => {
      const { x, y } = data(80, 9, 3, 21);
      const make = () => {
        const m = sn.sequential([sn.layers.dense({ units: 11, activation: 'tanh', inputShape: [9] }), sn.layers.dense({ units: 3, activation: 'softmax' })]);
        m.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
        return m;
      };
      for (const shuffle of [false, true]) {
        // 64 training rows (4 batches of 16) and 16 validation rows (one batch) over 5 epochs: one plan each.
        const opts = { epochs: 5, batchSize: 16, validationSplit: 0.2, shuffle };
        await expectSameWithAndWithout(make, x, y, opts);
        const on = await train(true, make, x, y, opts);
        expect({ recorded: on.recorded, replayed: on.replayed }, `shuffle ${shuffle}`).to.deep.equal({ recorded: 2, replayed: 5 * 5 - 2 });
      }
    });

    it('an embedding (gather and scatter-add kernels) with RMSprop replays exactly', async () => {
      // Indices distinct within each batch of 10 rows: WebGPU's scatter-add adds colliding
      // gradients in whatever order its atomics meet, so collisions are not bit-reproducible.
      const n = 60;
      const rand = mulberry32(9);
      const ids = new Int32Array(n * 5);
      for (let b = 0; b < n / 10; b++) {
        const perm = Int32Array.from({ length: 64 }, (_, i) => i).sort(() => rand() - 0.5);
        ids.set(perm.subarray(0, 50), b * 50);
      }
      const x = sn.tensor(ids, [n, 5], { dtype: 'int32' });
      const { y } = data(n, 1, 3, 10);
      const make = () => {
        const m = sn.sequential([
          sn.layers.embedding({ inputDim: 64, outputDim: 6, inputShape: [5] }),
          sn.layers.flatten(),
          sn.layers.dense({ units: 3, activation: 'softmax' }),
        ]);
        m.compile({ optimizer: 'rmsprop', loss: 'categorical_crossentropy' });
        return m;
      };
      await expectSameWithAndWithout(make, x, y, { epochs: 2, batchSize: 10, shuffle: false });
    });

    it('an out-of-range index in a replayed step still fails fit, naming the op', async () => {
      const n = 40;
      const idx = Int32Array.from({ length: n }, (_, i) => i % 8);
      idx[33] = 50; // in the fourth batch of 10: the first is recorded, this one replays
      const x = sn.tensor(idx, [n, 1], { dtype: 'int32' });
      const { y } = data(n, 1, 2, 3);
      const m = sn.sequential([sn.layers.embedding({ inputDim: 8, outputDim: 2, inputShape: [1] }), sn.layers.flatten(), sn.layers.dense({ units: 2, activation: 'softmax' })]);
      m.compile({ optimizer: 'sgd', loss: 'categorical_crossentropy' });
      let error = null;
      await m.fit(x, y, { epochs: 1, batchSize: 10, shuffle: false }).catch((e) => (error = e));
      expect(error?.message ?? 'no error').to.match(/index 50 is out of range/);
    });

    it('plans last across fit calls on the same model, data and compile (fit per epoch); a recompile records anew; weights set in place replay exactly', async () => {
      const { x, y } = data(80, 9, 3, 21);
      const run = async (plans) => {
        await stepPlans(plans);
        const counts = [await stepPlans(plans)];
        sn.manualSeed(11);
        const m = sn.sequential([sn.layers.dense({ units: 11, activation: 'tanh', inputShape: [9] }), sn.layers.dropout({ rate: 0.2 }), sn.layers.dense({ units: 3, activation: 'softmax' })]);
        m.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
        const logs = [];
        // 64 training rows (4 batches of 16) and 16 validation rows (one batch) per call.
        const fit = async (n) => {
          for (let i = 0; i < n; i++) logs.push((await m.fit(x, y, { epochs: 1, batchSize: 16, validationSplit: 0.2, shuffle: true })).history);
          counts.push(await stepPlans(plans));
        };
        await fit(1);
        await fit(2);
        m.compile({ optimizer: 'rmsprop', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
        await fit(2);
        m.setWeights(m.getWeights().map((w) => w.mul(0.5)));
        await fit(1);
        await fit(1);
        const weights = await Promise.all(m.getWeights().map((w) => w.data()));
        await stepPlans(true);
        const recorded = counts.slice(1).map((c, i) => c.recorded - counts[i].recorded);
        const replayed = counts.slice(1).map((c, i) => c.replayed - counts[i].replayed);
        return { logs, weights: weights.map((w) => Array.from(w)), recorded, replayed };
      };
      const off = await run(false);
      const on = await run(true);
      expect(on.logs).to.deep.equal(off.logs);
      on.weights.forEach((w, i) => expect(w, `weight ${i}`).to.deep.equal(off.weights[i]));
      expect(off.recorded.concat(off.replayed).every((n) => n === 0)).to.equal(true);
      // The first fit records the training and validation plans; the first after the recompile
      // records training anew (a new optimizer's state), its validation step unchanged; every
      // other call only replays (5 steps per call).
      expect(on.recorded).to.deep.equal([2, 0, 1, 0, 0]);
      expect(on.replayed).to.deep.equal([3, 10, 9, 5, 5]);
    });
  });
}
