// Multi-tensor optimizer steps (worker/ops/optim.ts, PyTorch's foreach idea):
// one kernel counts the steps, one updates every parameter. Checked against
// the same optimizer run one parameter at a time (one optimizer per
// parameter: a kernel each), bit for bit, with odd sizes (37x53, one-element
// biases), a gradient that reaches its parameter through a transpose, two
// parameter groups with different learning rates; kernels per step counted;
// state dict round trips; Keras fit's first SGD momentum step and options
// changed mid-fit.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { blobData, expectClose } from './util.js';

const EXACT = { atol: 0, rtol: 0 };
const SHAPES = [[37, 53], [53], [1], [7, 5], [3], [1, 1]];

const OPTIMIZERS = {
  'SGD (momentum, dampening, weightDecay)': (p, lr) => new sn.optim.SGD(p, { lr, momentum: 0.9, dampening: 0.3, weightDecay: 0.01 }),
  'SGD (nesterov, maximize)': (p, lr) => new sn.optim.SGD(p, { lr, momentum: 0.8, nesterov: true, maximize: true }),
  'SGD (plain)': (p, lr) => new sn.optim.SGD(p, { lr }),
  'Adam (weightDecay)': (p, lr) => new sn.optim.Adam(p, { lr, weightDecay: 0.1 }),
  'AdamW (amsgrad)': (p, lr) => new sn.optim.AdamW(p, { lr, amsgrad: true }),
  'RMSprop (centered, momentum)': (p, lr) => new sn.optim.RMSprop(p, { lr, momentum: 0.5, centered: true, weightDecay: 0.01 }),
  'Adagrad (lrDecay)': (p, lr) => new sn.optim.Adagrad(p, { lr, lrDecay: 0.01, initialAccumulatorValue: 0.2 }),
  'Adadelta': (p, lr) => new sn.optim.Adadelta(p, { lr, weightDecay: 0.01 }),
};

/** Parameters of SHAPES, the same values for the same seed. */
function makeParams(seed) {
  sn.manualSeed(seed);
  return SHAPES.map((s) => new sn.nn.Parameter(sn.randn(s)));
}

/** A loss that gives every parameter a gradient; the [7, 5] one is used transposed, so its gradient is a transposed view. */
function backwardLoss(params, t) {
  sn.manualSeed(100 + t);
  let loss = params[3].T.matmul(sn.randn([7, 2])).square().mean();
  for (const p of params) loss = loss.add(p.mul(sn.randn(p.shape)).sum()).add(p.square().sum().mul(0.25));
  loss.backward();
}

const values = (ts) => Promise.all(ts.map((t) => t.data()));

/** Kernels one call of fn dispatches. */
async function kernelsOf(fn) {
  await sn.sync();
  const before = (await sn.memory()).kernels;
  fn();
  await sn.sync();
  return (await sn.memory()).kernels - before;
}

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`multi-tensor optimizer steps (${backend})`, () => {
    before(() => sn.init({ backend }));

    for (const [name, make] of Object.entries(OPTIMIZERS)) {
      it(`${name}: one optimizer over two groups equals one optimizer per parameter, bit for bit`, async () => {
        const together = makeParams(1);
        const alone = makeParams(1);
        const half = SHAPES.length / 2;
        const lr = (i) => (i < half ? 0.01 : 0.004);
        const joint = make(together.slice(0, half), lr(0));
        joint.addParamGroup({ params: together.slice(half), lr: lr(half) });
        const single = alone.map((p, i) => make([p], lr(i)));
        for (let t = 0; t < 3; t++) {
          for (const [params, opts] of [[together, [joint]], [alone, single]]) {
            for (const o of opts) o.zeroGrad();
            backwardLoss(params, t);
            for (const o of opts) o.step();
          }
          const [a, b] = [await values(together), await values(alone)];
          a.forEach((v, i) => expectClose(v, b[i], { ...EXACT, label: `${name}: step ${t}, parameter [${SHAPES[i]}]` }));
        }
        // The state agrees too (step counts and moments), and the step moved every parameter.
        for (let i = 0; i < SHAPES.length; i++) {
          const [sa, sb] = [joint.state.get(together[i]), single[i].state.get(alone[i])];
          expect(Object.keys(sa)).to.deep.equal(Object.keys(sb));
          for (const k of Object.keys(sa)) expectClose(await sa[k].data(), await sb[k].data(), { ...EXACT, label: `${name}: state ${k} of [${SHAPES[i]}]` });
        }
        const start = await values(makeParams(1));
        (await values(together)).forEach((v, i) => expect(v.some((x, j) => x !== start[i][j]), `parameter ${i} moved`).to.equal(true));
      });
    }

    it('a step is 2 kernels (step counts, then every parameter) whatever the model size; WebGPU splits the update only at its binding limit', async () => {
      for (const layers of [2, 12]) {
        sn.manualSeed(3);
        const mods = [];
        for (let i = 0; i < layers; i++) mods.push(new sn.nn.Linear(6, 6), new sn.nn.Tanh());
        const model = new sn.nn.Sequential(...mods);
        const n = model.parameters().length;
        const opt = new sn.optim.Adam(model.parameters(), { lr: 0.01 });
        const x = sn.randn([4, 6]);
        const step = async () => {
          opt.zeroGrad();
          model.forward(x).square().mean().backward();
          return kernelsOf(() => opt.step());
        };
        await step(); // creates the state
        const kernels = await step();
        // The flat state is one binding; each parameter and its gradient two more: 3 parameters per kernel where WebGPU binds only 8.
        if (backend === 'webgpu') expect(kernels).to.be.within(2, 1 + Math.ceil(n / 3));
        else expect(kernels, `${n} parameters`).to.equal(2);
      }
    });

    it('160 parameters: the update splits where its segment table fills, results unchanged', async () => {
      const make = (seed) => {
        sn.manualSeed(seed);
        return Array.from({ length: 160 }, (_, i) => new sn.nn.Parameter(sn.randn([1 + (i % 3)])));
      };
      const together = make(5);
      const alone = make(5);
      const joint = new sn.optim.Adam(together, { lr: 0.01 });
      const single = alone.map((p) => new sn.optim.Adam([p], { lr: 0.01 }));
      // Each gradient is a GEMM's result (as in a model), read in place by the update.
      sn.manualSeed(6);
      const xs = [1, 2, 3].map((k) => sn.randn([2, k]));
      const loss = (params) => params.reduce((l, p) => l.add(xs[p.size - 1].matmul(p.reshape([p.size, 1])).square().sum()), sn.zeros([])).backward();
      let kernels = 0;
      for (let t = 0; t < 2; t++) {
        loss(together);
        kernels = await kernelsOf(() => joint.step());
        joint.zeroGrad();
        loss(alone);
        for (const o of single) { o.step(); o.zeroGrad(); }
      }
      const [a, b] = [await values(together), await values(alone)];
      a.forEach((v, i) => expectClose(v, b[i], { ...EXACT, label: `parameter ${i}` }));
      // One step-count kernel, the update in two (a segment of Adam's 20 slots takes 62 words of the 8,192).
      if (backend !== 'webgpu') expect(kernels).to.equal(3);
    });

    it('gradient clipping scales every gradient in one kernel', async () => {
      const params = makeParams(2);
      backwardLoss(params, 0);
      const before = await values(params.map((p) => p.grad));
      let total;
      const kernels = await kernelsOf(() => { total = sn.nn.utils.clipGradNorm(params, 0.5); });
      const norm = Math.sqrt(before.flat().reduce((s, g) => s + Array.from(g).reduce((a, v) => a + v * v, 0), 0));
      expect(await total.item()).to.be.closeTo(norm, norm * 1e-5);
      const coef = 0.5 / (norm + 1e-6);
      const after = await values(params.map((p) => p.grad));
      after.forEach((g, i) => expectClose(g, before[i].map((v) => Math.fround(v * coef)), { rtol: 1e-5, atol: 1e-7, label: `grad ${i}` }));
      // The norm: a sum per gradient, then their total and the coefficient; each gradient handle (a lazy copy of
      // the backward's result) is computed before it is written in place; then the one scaling kernel.
      expect(kernels).to.be.at.most(2 * params.length + 2);
    });

    for (const name of ['SGD (momentum, dampening, weightDecay)', 'AdamW (amsgrad)', 'Adagrad (lrDecay)']) {
      it(`${name}: a state dict saved mid-run and loaded into a fresh optimizer continues exactly`, async () => {
        const make = OPTIMIZERS[name];
        const a = makeParams(4);
        const b = makeParams(4);
        const optA = make(a, 0.01);
        for (let t = 0; t < 2; t++) {
          optA.zeroGrad();
          backwardLoss(a, t);
          optA.step();
        }
        sn.noGrad(() => b.forEach((p, i) => p.copy_(a[i])));
        const optB = make(b, 0.01);
        optB.loadStateDict(optA.stateDict());
        for (let t = 2; t < 4; t++) {
          for (const [params, opt] of [[a, optA], [b, optB]]) {
            opt.zeroGrad();
            backwardLoss(params, t);
            opt.step();
          }
        }
        const [va, vb] = [await values(a), await values(b)];
        va.forEach((v, i) => expectClose(v, vb[i], { ...EXACT, label: `${name}: parameter [${SHAPES[i]}]` }));
      });
    }

    describe('Keras fit', () => {
      const N = 12;
      const problem = () => {
        const { x, y } = blobData(N, 5);
        return { x: sn.tensor(x, [N, 6]), y: sn.tensor(y, [N, 3]) };
      };
      const kerasModel = (optimizer) => {
        sn.manualSeed(8);
        const model = sn.sequential([sn.layers.dense({ units: 5, activation: 'tanh', inputShape: [6] }), sn.layers.dense({ units: 3, activation: 'softmax' })]);
        model.compile({ optimizer: optimizer(model.parameters()), loss: 'categorical_crossentropy' });
        return model;
      };

      it("SGD with momentum and dampening starts its buffer at the gradient, as PyTorch does (fit's first step is plain SGD)", async () => {
        const { x, y } = problem();
        const damped = kerasModel((p) => new sn.optim.SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.5 }));
        await damped.fit(x, y, { epochs: 1, batchSize: N, shuffle: false });
        const plain = kerasModel((p) => new sn.optim.SGD(p, { lr: 0.1 }));
        await plain.fit(x, y, { epochs: 1, batchSize: N, shuffle: false });
        const [a, b] = [await values(damped.parameters()), await values(plain.parameters())];
        a.forEach((v, i) => expectClose(v, b[i], { ...EXACT, label: `weight ${i}` }));
        // Later steps do decay the buffer: a second epoch differs from plain SGD's.
        await damped.fit(x, y, { epochs: 1, batchSize: N, shuffle: false });
        await plain.fit(x, y, { epochs: 1, batchSize: N, shuffle: false });
        const [c, d] = [await damped.parameters()[0].data(), await plain.parameters()[0].data()];
        expect(c.some((v, i) => v !== d[i])).to.equal(true);
      });

      it('a weightDecay changed in a callback mid-fit reaches the replayed step; amsgrad changed mid-fit is refused clearly', async () => {
        const { x, y } = problem();
        const make = (p) => new sn.optim.Adam(p, { lr: 0.05 });
        const fitted = kerasModel(make);
        await fitted.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, callbacks: { onEpochEnd: () => { fitted.optimizer.paramGroups[0].weightDecay = 0.5; } } });
        const stepped = kerasModel(make);
        for (let epoch = 0; epoch < 2; epoch++) {
          for (let s = 0; s < N; s += 4) await stepped.trainOnBatch(x.slice(0, s, s + 4), y.slice(0, s, s + 4));
          stepped.optimizer.paramGroups[0].weightDecay = 0.5;
        }
        const [a, b] = [await values(fitted.parameters()), await values(stepped.parameters())];
        a.forEach((v, i) => expectClose(v, b[i], { ...EXACT, label: `weight ${i}` }));

        const refused = kerasModel(make);
        let error = null;
        await refused.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, callbacks: { onEpochEnd: () => { refused.optimizer.paramGroups[0].amsgrad = true; } } }).catch((e) => { error = e; });
        expect(error?.message).to.match(/amsgrad.*changed during fit/);
        // Outside fit the change takes effect at the next step (a max_exp_avg_sq appears).
        await refused.trainOnBatch(x, y);
        expect(refused.optimizer.state.get(refused.parameters()[0])).to.have.property('max_exp_avg_sq');
      });
    });
  });
}
