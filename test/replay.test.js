// Imperative loops replay as step plans (worker/replay.ts): a PyTorch-style loop that sends
// the same step again runs it from a plan, and must give exactly what op-by-op execution
// gives, on every backend. The engine's internal switch turns plans off for the comparison
// and reports how many loop steps were recorded, replayed, refused or fell back.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { mulberry32 } from './util.js';

const stepPlans = (on) => sn._runtime().call((e) => e._stepPlans(on));

function randomData(n, features, classes, seed) {
  const rand = mulberry32(seed);
  const x = Float32Array.from({ length: n * features }, () => rand() * 2 - 1);
  const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * classes));
  return { x, labels };
}

/**
 * Runs `loop(step)` with plans on or off from the same seed: the model's final weights, what the
 * loop returned, and what the loop replay did meanwhile.
 */
async function run(plans, build, loop) {
  await stepPlans(plans);
  const before = (await stepPlans(plans)).loop;
  sn.manualSeed(5);
  const parts = build();
  const out = await loop(parts);
  await sn.sync();
  const after = (await stepPlans(true)).loop;
  const weights = await Promise.all(parts.model.parameters().map((p) => p.data()));
  const counts = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
  return { weights: weights.map((w) => Array.from(w)), out, counts };
}

/** Plans on and off give bit-identical weights and loop results; returns the plans-on counts. */
async function expectSame(build, loop) {
  const off = await run(false, build, loop);
  const on = await run(true, build, loop);
  expect(off.counts.replayed + off.counts.recorded).to.equal(0);
  expect(on.out).to.deep.equal(off.out);
  on.weights.forEach((w, i) => expect(w, `parameter ${i}`).to.deep.equal(off.weights[i]));
  return on.counts;
}

const mlp = (dropout = 0, features = 13) => () => {
  const layers = [new sn.nn.Linear(features, 37), new sn.nn.ReLU()];
  if (dropout) layers.push(new sn.nn.Dropout(dropout));
  layers.push(new sn.nn.Linear(37, 5));
  const model = new sn.nn.Sequential(...layers);
  return { model, opt: new sn.optim.Adam(model.parameters(), { lr: 0.01 }), lossFn: new sn.nn.CrossEntropyLoss() };
};

/** Generator 4 -> 13 and discriminator 13 -> 1, each with its own Adam. */
const gan = () => {
  const G = new sn.nn.Sequential(new sn.nn.Linear(4, 16), new sn.nn.ReLU(), new sn.nn.Linear(16, 13));
  const D = new sn.nn.Sequential(new sn.nn.Linear(13, 16), new sn.nn.ReLU(), new sn.nn.Linear(16, 1));
  return {
    model: new sn.nn.Sequential(G, D),
    G,
    D,
    optG: new sn.optim.Adam(G.parameters(), { lr: 0.01 }),
    optD: new sn.optim.Adam(D.parameters(), { lr: 0.01 }),
    lossFn: new sn.nn.BCEWithLogitsLoss(),
  };
};

/** A recurrent cell written with ops: h' = tanh(x Wx + h Wh), logits from h'. */
const rnn = () => {
  const input = new sn.nn.Linear(13, 17);
  const recurrent = new sn.nn.Linear(17, 17);
  const head = new sn.nn.Linear(17, 5);
  const model = new sn.nn.Sequential(input, recurrent, head);
  return { model, input, recurrent, head, opt: new sn.optim.Adam(model.parameters(), { lr: 0.01 }), lossFn: new sn.nn.CrossEntropyLoss() };
};

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`Imperative loop replay (${backend})`, () => {
    before(() => sn.init({ backend }));

    const { x, labels } = randomData(96, 13, 5, 3);

    it('a loop over slices of one tensor replays and ends with the weights, and every kept loss, of op-by-op steps', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        // Every step's loss handle is kept: the old ones must keep their values while later steps run.
        const losses = [];
        for (let epoch = 0; epoch < 3; epoch++) {
          for (let s = 0; s < 96; s += 16) {
            opt.zeroGrad();
            const loss = lossFn.forward(model.forward(xs.slice(0, s, s + 16)), ys.slice(0, s, s + 16));
            loss.backward();
            opt.step();
            losses.push(loss);
          }
        }
        return Promise.all(losses.map((l) => l.item()));
      });
      expect(counts.recorded).to.equal(1);
      // Steps 1 and 2 teach the template (step 1 also makes Adam's state), step 3 records it.
      expect(counts.replayed).to.be.at.least(18 - 4);
      expect(counts.refused).to.equal(0);
    });

    it('a replayed step runs the kernels of an op-by-op step, plus one copy per moving slice (lazy results the page holds stay lazy)', async () => {
      const perStep = async (plans) => {
        await stepPlans(plans);
        sn.manualSeed(5);
        const { model, opt, lossFn } = mlp()();
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const step = (s) => {
          opt.zeroGrad();
          const loss = lossFn.forward(model.forward(xs.slice(0, s, s + 8)), ys.slice(0, s, s + 8));
          loss.backward();
          opt.step();
          return loss;
        };
        for (let s = 0; s < 48; s += 8) step(s);
        const k0 = (await sn.memory()).kernels;
        let loss;
        for (let s = 48; s < 96; s += 8) loss = step(s);
        const k1 = (await sn.memory()).kernels;
        const last = await loss.item();
        await stepPlans(true);
        return { kernels: (k1 - k0) / 6, last };
      };
      const off = await perStep(false);
      const on = await perStep(true);
      expect(on.last).to.equal(off.last);
      expect(on.kernels).to.be.at.most(off.kernels + 2);
    });

    it('data uploaded at every step replays with the new values; reading intermediates after each step is allowed', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const seen = [];
        for (let s = 0; s < 96; s += 8) {
          const xb = sn.tensor(x.subarray(s * 13, (s + 8) * 13), [8, 13]);
          const yb = sn.tensor(labels.subarray(s, s + 8), [8], { dtype: 'int32' });
          opt.zeroGrad();
          const hidden = model.forward(xb);
          const loss = lossFn.forward(hidden, yb);
          loss.backward();
          opt.step();
          seen.push(await loss.item(), Array.from(await hidden.data()), Array.from(await model.parameters()[1].grad.data()));
        }
        return seen;
      });
      expect(counts.replayed).to.be.at.least(12 - 4);
    });

    it('a loop that changes batch size, learning rate and an attribute mid-way falls back to op-by-op steps and then replays again', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const losses = [];
        const step = (s, size, scale = 1) => {
          opt.zeroGrad();
          const out = model.forward(xs.slice(0, s, s + size));
          const loss = lossFn.forward(scale === 1 ? out : out.mul(scale), ys.slice(0, s, s + size));
          loss.backward();
          opt.step();
          losses.push(loss);
        };
        for (let s = 0; s < 48; s += 8) step(s, 8);
        for (let s = 48; s < 96; s += 12) step(s, 12);
        opt.paramGroups[0].lr = 0.003;
        for (let s = 0; s < 48; s += 8) step(s, 8);
        for (let s = 0; s < 48; s += 8) step(s, 8, s === 24 ? 0.5 : 2);
        return Promise.all(losses.map((l) => l.item()));
      });
      expect(counts.fallbacks).to.be.above(0);
      expect(counts.replayed).to.be.above(4);
    });

    it('a read in the middle of a step runs it op by op with the same results', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const seen = [];
        for (let s = 0; s < 96; s += 8) {
          opt.zeroGrad();
          const loss = lossFn.forward(model.forward(xs.slice(0, s, s + 8)), ys.slice(0, s, s + 8));
          // Every third step reads its loss before backward.
          if (s % 24 === 16) seen.push(await loss.item());
          loss.backward();
          opt.step();
        }
        return seen;
      });
      expect(counts.fallbacks).to.be.above(0);
      expect(counts.replayed).to.be.above(0);
    });

    it('dropout draws new random numbers at every replayed step, as op by op', async () => {
      const counts = await expectSame(mlp(0.4), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const losses = [];
        for (let s = 0; s < 96; s += 8) {
          opt.zeroGrad();
          const loss = lossFn.forward(model.forward(xs.slice(0, s, s + 8)), ys.slice(0, s, s + 8));
          loss.backward();
          opt.step();
          losses.push(loss);
        }
        return Promise.all(losses.map((l) => l.item()));
      });
      expect(counts.replayed).to.be.at.least(12 - 4);
    });

    it('gradient accumulation (two backward passes per step) replays exactly', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const losses = [];
        for (let s = 0; s < 96; s += 16) {
          opt.zeroGrad();
          for (const h of [0, 8]) {
            const loss = lossFn.forward(model.forward(xs.slice(0, s + h, s + h + 8)), ys.slice(0, s + h, s + h + 8)).div(2);
            loss.backward();
            losses.push(loss);
          }
          opt.step();
        }
        for (let s = 0; s < 96; s += 16) {
          opt.zeroGrad();
          for (const h of [0, 8]) lossFn.forward(model.forward(xs.slice(0, s + h, s + h + 8)), ys.slice(0, s + h, s + h + 8)).div(2).backward();
          opt.step();
        }
        return Promise.all(losses.map((l) => l.item()));
      });
      expect(counts.replayed).to.be.at.least(12 - 5);
    });

    it('a GAN-style loop (two optimizers, two steps per iteration) replays both steps exactly', async () => {
      const counts = await expectSame(gan, async ({ G, D, optG, optD, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ones = sn.ones([8, 1]);
        const zeros = sn.zeros([8, 1]);
        const losses = [];
        for (let s = 0; s < 96; s += 8) {
          optD.zeroGrad();
          const fake = sn.noGrad(() => G.forward(sn.randn([8, 4])));
          const lossD = lossFn.forward(D.forward(xs.slice(0, s, s + 8)), ones).add(lossFn.forward(D.forward(fake), zeros));
          lossD.backward();
          optD.step();
          optG.zeroGrad();
          const lossG = lossFn.forward(D.forward(G.forward(sn.randn([8, 4]))), ones);
          lossG.backward();
          optG.step();
          losses.push(lossD, lossG);
        }
        return Promise.all(losses.map((l) => l.item()));
      });
      // Each kind of step: the first makes Adam's state, the next two teach its template, the fourth records it.
      expect(counts.recorded).to.equal(2);
      expect(counts.replayed).to.be.at.least(2 * (12 - 4));
      expect(counts.refused).to.equal(0);
    });

    it('truncated backpropagation through time (a hidden state detached and carried to the next step under a new id) replays exactly', async () => {
      const counts = await expectSame(rnn, async ({ input, recurrent, head, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        let h = sn.zeros([8, 17]);
        const losses = [];
        for (let s = 0; s < 96; s += 8) {
          h = h.detach();
          opt.zeroGrad();
          h = input.forward(xs.slice(0, s, s + 8)).add(recurrent.forward(h)).tanh();
          const loss = lossFn.forward(head.forward(h), ys.slice(0, s, s + 8));
          loss.backward();
          opt.step();
          losses.push(loss);
        }
        return { losses: await Promise.all(losses.map((l) => l.item())), h: Array.from(await h.data()) };
      });
      // Step 2 carries the hidden state step 1 made among the loop's setup, so steps 3 and 4 teach the template.
      expect(counts.recorded).to.equal(1);
      expect(counts.replayed).to.be.at.least(12 - 5);
      expect(counts.refused).to.equal(0);
    });

    it('a step held across two batches that fails in the first: its error is reported and the second batch runs, as op by op', async () => {
      const counts = await expectSame(mlp(), async ({ model, opt, lossFn }) => {
        const xs = sn.tensor(x, [96, 13]);
        const ys = sn.tensor(labels, [96], { dtype: 'int32' });
        const aux = sn.tensor(x.subarray(0, 13), [13]);
        const losses = [];
        // The forward pass and a side product of `aux` in one batch, backward and the update in the next.
        const step = async (s) => {
          opt.zeroGrad();
          const loss = lossFn.forward(model.forward(xs.slice(0, s, s + 8)), ys.slice(0, s, s + 8));
          aux.mul(2);
          await null;
          loss.backward();
          opt.step();
          losses.push(loss);
          await null;
        };
        for (let s = 0; s < 64; s += 8) await step(s);
        // The worker no longer has `aux` (as after a failed batch): from now on each step's first batch fails at its end.
        sn._runtime().enqueue(['free', [aux.id]]);
        for (let s = 64; s < 96; s += 8) await step(s);
        const failure = await sn.sync().then(() => 'none', (e) => e.message.replace(/#\d+/, '#n'));
        expect(failure).to.match(/tensor #n does not exist in the worker/);
        return { failure, losses: await Promise.all(losses.map((l) => l.item())) };
      });
      expect(counts.replayed).to.be.above(0);
    });
  });
}
