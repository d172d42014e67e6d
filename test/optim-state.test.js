// Optimizer state on the device: step counts are 0-d tensors the worker
// counts up, hyper-parameters a device tensor the page rewrites when they
// change. So Keras fit, which replays one recorded step, must land exactly
// where the same steps taken one by one land (weights, step counts and
// moments), a learning rate changed from a callback mid-fit must reach the
// replayed step, and old checkpoints whose step is a number must still load.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { blobData, expectClose } from './util.js';

const N = 20;
const BATCH = 8; // batches of 8, 8 and 4: both recorded programs run
const EPOCHS = 2;
const STEPS = EPOCHS * Math.ceil(N / BATCH);
const EXACT = { atol: 0, rtol: 0 };

function problem() {
  const { x, y } = blobData(N, 5);
  return { x: sn.tensor(x, [N, 6]), y: sn.tensor(y, [N, 3]) };
}

/** A small Keras model, the same weights for the same seed, compiled with the optimizer makeOptimizer builds. */
function kerasModel(makeOptimizer) {
  sn.manualSeed(8);
  const model = sn.sequential([
    sn.layers.dense({ units: 7, activation: 'tanh', inputShape: [6] }),
    sn.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: makeOptimizer(model.parameters()), loss: 'categorical_crossentropy' });
  return model;
}

/** The steps fit takes (no shuffling), one trainOnBatch each; `afterEpoch` runs where fit's onEpochEnd would. */
async function stepByStep(model, x, y, afterEpoch = () => {}) {
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let s = 0; s < N; s += BATCH) await model.trainOnBatch(x.slice(0, s, s + BATCH), y.slice(0, s, s + BATCH));
    afterEpoch(epoch);
  }
}

const values = (ts) => Promise.all(ts.map((t) => t.data()));

/** Weights, and every state entry of every parameter: step counts as numbers, moments as values. */
async function snapshot(model) {
  const state = [];
  for (const p of model.parameters()) {
    const entries = Object.entries(model.optimizer.state.get(p));
    state.push(Object.fromEntries(await Promise.all(entries.map(async ([k, v]) => [k, k === 'step' ? await v.item() : Array.from(await v.data())]))));
  }
  return { weights: await values(model.parameters()), state };
}

function expectSame(a, b, label) {
  a.weights.forEach((w, i) => expectClose(w, b.weights[i], { ...EXACT, label: `${label}: weight ${i}` }));
  expect(a.state).to.deep.equal(b.state);
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`optimizer state on the device (${backend})`, () => {
    before(() => sn.init({ backend }));

    const optimizers = {
      Adam: (params) => new sn.optim.Adam(params, { lr: 0.05, betas: [0.8, 0.95], amsgrad: true }),
      'Adagrad with lrDecay': (params) => new sn.optim.Adagrad(params, { lr: 0.3, lrDecay: 0.2, initialAccumulatorValue: 0.1, weightDecay: 0.01 }),
    };
    for (const [name, make] of Object.entries(optimizers)) {
      it(`${name}: a Keras fit of ${STEPS} steps equals ${STEPS} single steps, weights, step counts and moments alike`, async () => {
        const { x, y } = problem();
        const fitted = kerasModel(make);
        await fitted.fit(x, y, { epochs: EPOCHS, batchSize: BATCH, shuffle: false });
        const stepped = kerasModel(make);
        await stepByStep(stepped, x, y);
        const a = await snapshot(fitted);
        expectSame(a, await snapshot(stepped), name);
        expect(a.state.map((s) => s.step)).to.deep.equal(fitted.parameters().map(() => STEPS));
        // And a second fit goes on counting from there on the device.
        await fitted.fit(x, y, { epochs: 1, batchSize: N, shuffle: false });
        expect((await snapshot(fitted)).state[0].step).to.equal(STEPS + 1);
      });
    }

    it('a scheduler stepped in a callback mid-fit changes the lr the replayed step uses', async () => {
      const { x, y } = problem();
      const make = (params) => new sn.optim.Adam(params, { lr: 0.05 });
      const fitted = kerasModel(make);
      const sched = new sn.optim.lrScheduler.StepLR(fitted.optimizer, { stepSize: 1, gamma: 0.1 });
      const seenLr = [];
      await fitted.fit(x, y, {
        epochs: EPOCHS, batchSize: BATCH, shuffle: false,
        callbacks: { onEpochEnd: () => { sched.step(); seenLr.push(sched.getLastLr()[0]); } },
      });
      expect(seenLr).to.deep.equal([0.05 * 0.1, 0.05 * 0.1 * 0.1]);

      const stepped = kerasModel(make);
      const sched2 = new sn.optim.lrScheduler.StepLR(stepped.optimizer, { stepSize: 1, gamma: 0.1 });
      await stepByStep(stepped, x, y, () => sched2.step());
      expectSame(await snapshot(fitted), await snapshot(stepped), 'scheduled');

      // Without the lr change the weights end elsewhere: the change did take effect.
      const unscheduled = kerasModel(make);
      await unscheduled.fit(x, y, { epochs: EPOCHS, batchSize: BATCH, shuffle: false });
      const [a, b] = [(await snapshot(fitted)).weights[0], (await snapshot(unscheduled)).weights[0]];
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).to.be.above(1e-3);
    });

    it('an lr assigned in a callback (paramGroups[0].lr = ...) reaches the replayed step', async () => {
      const { x, y } = problem();
      const make = (params) => new sn.optim.SGD(params, { lr: 0.2, momentum: 0.5 });
      const fitted = kerasModel(make);
      await fitted.fit(x, y, {
        epochs: EPOCHS, batchSize: BATCH, shuffle: false,
        callbacks: { onEpochBegin: (epoch) => { fitted.optimizer.paramGroups[0].lr = epoch ? 0.02 : 0.2; } },
      });
      const stepped = kerasModel(make);
      await stepByStep(stepped, x, y, (epoch) => { if (epoch === 0) stepped.optimizer.paramGroups[0].lr = 0.02; });
      // SGD keeps no step count: the weights and momentum buffers say it all.
      expectSame(await snapshot(fitted), await snapshot(stepped), 'lr assigned');
    });

    it('loads step counts saved as numbers (older checkpoints) or as PyTorch tensors of shape [] or [1]', async () => {
      const run = async (opt, p, steps) => {
        for (let i = 0; i < steps; i++) {
          opt.zeroGrad();
          p.mul(sn.tensor([0.5, -2, 1])).sum().add(p.square().sum()).backward();
          opt.step();
        }
      };
      const make = () => {
        const p = new sn.nn.Parameter(sn.tensor([1, -1, 0.25]));
        return [p, new sn.optim.Adam([p], { lr: 0.1 })];
      };
      const [pa, a] = make();
      await run(a, pa, 2);
      const sd = a.stateDict();
      const count = await sd.state[0].step.item();
      expect(count).to.equal(2);
      for (const step of [count, sn.tensor([count]), sn.full([], count)]) {
        const [pb, b] = make();
        sn.noGrad(() => pb.copy_(pa));
        b.loadStateDict({ ...sd, state: { 0: { ...sd.state[0], step } } });
        expect(b.state.get(pb).step.shape).to.deep.equal([]);
        await run(b, pb, 2);
        expect(await b.state.get(pb).step.item()).to.equal(4);
        const [pc, c] = make();
        sn.noGrad(() => pc.copy_(pa));
        c.loadStateDict(sd);
        await run(c, pc, 2);
        expectClose(await pb.data(), await pc.data(), { ...EXACT, label: `step given as ${step instanceof sn.Tensor ? `a tensor of shape [${step.shape}]` : 'a number'}` });
      }
      const [, d] = make();
      expect(() => d.loadStateDict({ ...sd, state: { 0: { ...sd.state[0], step: 'two' } } })).to.throw(/'step' of parameter 0 must be a count/);
      expect(() => d.loadStateDict({ ...sd, state: { 0: { ...sd.state[0], step: sn.tensor([1, 2]) } } })).to.throw(/'step' of parameter 0 must be a count/);
    });

    it('a step is one step-count kernel plus one multi-tensor kernel for every parameter, and sends nothing new', async () => {
      sn.manualSeed(2);
      const model = new sn.nn.Sequential(new sn.nn.Linear(5, 4), new sn.nn.ReLU(), new sn.nn.Linear(4, 3));
      const opt = new sn.optim.Adam(model.parameters(), { lr: 0.01 });
      const x = sn.randn([6, 5]);
      const kernelsOfStep = async () => {
        opt.zeroGrad();
        model.forward(x).square().mean().backward();
        await sn.sync();
        const before = (await sn.memory()).kernels;
        const commands = sn.stats().commands;
        opt.step();
        await sn.sync();
        return [(await sn.memory()).kernels - before, sn.stats().commands - commands];
      };
      await kernelsOfStep(); // creates the state
      expect(await kernelsOfStep()).to.deep.equal([2, 1]);
      // A changed lr costs one small write (an upload and a copy) before the step, once.
      opt.paramGroups[0].lr = 0.005;
      expect(await kernelsOfStep()).to.deep.equal([1 + 2, 3]);
      expect(await kernelsOfStep()).to.deep.equal([2, 1]);
    });
  });
}
