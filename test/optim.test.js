// sn.optim and sn.nn.utils.clipGradNorm: every optimizer case in
// test/fixtures/torch.json and optim_extra.json (PyTorch 1.13, 4 steps each) on both backends,
// the three schedulers, parameter groups, state dict round trips, gradient
// clipping against hand computation, and the shape of the op stream (one
// command per step).
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose } from './util.js';

const fixtures = await (await fetch(new URL('./fixtures/torch.json', import.meta.url))).json();
// Adagrad and Adadelta come from their own generator (make_optim_extra.py), in the same layout.
const extra = await (await fetch(new URL('./fixtures/optim_extra.json', import.meta.url))).json();
Object.assign(fixtures.optimizers, extra.optimizers);
const OPTIMIZERS = Object.values(fixtures.optimizers);
const SCHEDULERS = Object.values(fixtures.schedulers);

const fromFixture = (t) => sn.tensor(Float32Array.from(t.data), t.shape);
const param = (values, shape) => new sn.nn.Parameter(sn.tensor(Float32Array.from(values), shape));
const CLOSE = { rtol: 2e-6, atol: 1e-6 };

/** The fixtures' loss: sum(p * w) + 0.5 * sum(p^2), so grad = w + p. */
function backwardFixtureLoss(p, w) {
  p.mul(w).sum().add(p.square().sum().mul(0.5)).backward();
}

/** Runs fixture steps [from, to) on p with opt, checking the param after each. */
async function runSteps(c, p, opt, from, to, label) {
  for (let t = from; t < to; t++) {
    opt.zeroGrad();
    backwardFixtureLoss(p, fromFixture(c.w[t]));
    expectClose(await p.grad.data(), c.grads[t].data, { ...CLOSE, label: `${label} grad ${t}` });
    opt.step();
    expectClose(await p.data(), c.params[t].data, { ...CLOSE, label: `${label} step ${t}` });
  }
}

const makeOptimizer = (c, params) => new sn.optim[c.optimizer](params, c.options);

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`optim (${backend})`, () => {
    before(async () => {
      await sn.init({ backend });
    });

    for (const c of OPTIMIZERS) {
      it(`${c.name} matches PyTorch for ${c.steps} steps`, async () => {
        const p = new sn.nn.Parameter(fromFixture(c.initialParam));
        await runSteps(c, p, makeOptimizer(c, [p]), 0, c.steps, c.name);
      });
    }

    for (const name of ['SGD.momentum.dampening', 'Adam.amsgrad', 'RMSprop.centered.momentum', 'Adagrad.lrDecay.weightDecay.initialAccumulator', 'Adadelta.rho.eps.weightDecay']) {
      it(`${name}: stateDict, then loadStateDict into a new optimizer, continues as if uninterrupted`, async () => {
        const c = fixtures.optimizers[name];
        const pa = new sn.nn.Parameter(fromFixture(c.initialParam));
        const a = makeOptimizer(c, [pa]);
        await runSteps(c, pa, a, 0, 2, `${name} A`);
        const sd = a.stateDict();
        expect(Object.keys(sd.state)).to.deep.equal(['0']);
        expect(sd.param_groups).to.have.length(1);
        expect(sd.param_groups[0].params).to.deep.equal([0]);
        expect(sd.param_groups[0].lr).to.equal(c.options.lr);
        const keys = c.stateKeys ?? { SGD: ['momentum_buffer'], Adam: ['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'], RMSprop: ['step', 'square_avg', 'momentum_buffer', 'grad_avg'] }[c.optimizer];
        expect(Object.keys(sd.state[0])).to.deep.equal(keys);
        // Step counts are 0-d float32 tensors on the device, as PyTorch 1.13 keeps Adam's and Adagrad's.
        if (keys[0] === 'step') {
          expect(sd.state[0].step.shape).to.deep.equal([]);
          expect(await sd.state[0].step.item()).to.equal(2);
        }

        // A new parameter with the same values, and a fresh optimizer loaded from the dict.
        const pb = new sn.nn.Parameter(sn.tensor(await pa.data(), pa.shape));
        const b = makeOptimizer({ ...c, options: { ...c.options, lr: 123 } }, [pb]);
        b.loadStateDict(sd);
        expect(b.paramGroups[0].lr).to.equal(c.options.lr);
        // B runs first: if it shared state tensors with A, A's later steps would go wrong.
        await runSteps(c, pb, b, 2, c.steps, `${name} B`);
        await runSteps(c, pa, a, 2, c.steps, `${name} A`);
        expect(Array.from(await pb.data())).to.deep.equal(Array.from(await pa.data()));
      });
    }

    it('one step is one command, whatever the number of parameters', async () => {
      sn.manualSeed(1);
      const model = new sn.nn.Sequential(new sn.nn.Linear(3, 4), new sn.nn.ReLU(), new sn.nn.Linear(4, 2));
      const opt = new sn.optim.Adam(model.parameters(), { lr: 0.01 });
      const x = sn.randn([5, 3]);
      const commandsOfStep = async () => {
        opt.zeroGrad();
        model.forward(x).square().mean().backward();
        await sn.sync();
        const before = sn.stats().commands;
        opt.step();
        await sn.sync();
        return sn.stats().commands - before;
      };
      // The first step also carves the state out of one new flat tensor (1 command), as views (a slice, and a reshape
      // unless 1-D): the group's hyper-parameters (uploaded and copied in: 3), per parameter a step count (2), its
      // step-dependent scalars (1) and two moments (2 each for the weights, 1 each for the biases).
      expect(await commandsOfStep()).to.equal(1 + 3 + 4 * (2 + 1) + 2 * (2 + 2) + 2 * (1 + 1) + 1);
      expect(await commandsOfStep()).to.equal(1);
      expect(await opt.state.get(model.parameters()[0]).step.item()).to.equal(2);
    });

    it('parameter groups: per-group options, defaults filled in, lr changes take effect, params without grad skipped', async () => {
      const wa = [1, -2, 3];
      const wb = [0.5, 4];
      const a = param([1, 1, 1], [3]);
      const b = param([2, 2], [2]);
      const idle = param([7], [1]);
      const opt = new sn.optim.SGD([{ params: [a], lr: 0.1 }, { params: [b, idle] }], { lr: 0.01, momentum: 0.9 });
      expect(opt.paramGroups.map((g) => [g.lr, g.momentum, g.params.length])).to.deep.equal([[0.1, 0.9, 1], [0.01, 0.9, 2]]);
      const expectA = [1, 1, 1];
      const expectB = [2, 2];
      const bufA = [0, 0, 0];
      const bufB = [0, 0];
      for (let step = 0; step < 3; step++) {
        if (step === 2) opt.paramGroups[1].lr = 0.5;
        opt.zeroGrad();
        a.mul(sn.tensor(wa)).sum().add(b.mul(sn.tensor(wb)).sum()).backward();
        opt.step();
        // SGD with momentum by hand: the buffer starts as the gradient.
        wa.forEach((g, i) => { bufA[i] = step ? 0.9 * bufA[i] + g : g; expectA[i] -= 0.1 * bufA[i]; });
        wb.forEach((g, i) => { bufB[i] = step ? 0.9 * bufB[i] + g : g; expectB[i] -= opt.paramGroups[1].lr * bufB[i]; });
        expectClose(await a.data(), expectA, { ...CLOSE, label: `a step ${step}` });
        expectClose(await b.data(), expectB, { ...CLOSE, label: `b step ${step}` });
      }
      expect(Array.from(await idle.data())).to.deep.equal([7]);
      expect(opt.state.has(idle)).to.equal(false);
      expect(Object.keys(opt.stateDict().state)).to.deep.equal(['0', '1']);
      expect(opt.stateDict().param_groups.map((g) => g.params)).to.deep.equal([[0], [1, 2]]);
    });

    it('maximize ascends: the same as minimizing the negated gradient', async () => {
      for (const [Opt, options] of [[sn.optim.SGD, { lr: 0.1, momentum: 0.5, weightDecay: 0.1 }], [sn.optim.Adam, { lr: 0.1 }], [sn.optim.RMSprop, { centered: true }]]) {
        const w = [0.3, -1.2, 2];
        const up = param([1, -1, 0.5], [3]);
        const down = param([1, -1, 0.5], [3]);
        const optUp = new Opt([up], { ...options, maximize: true });
        const optDown = new Opt([down], options);
        for (let step = 0; step < 2; step++) {
          optUp.zeroGrad();
          optDown.zeroGrad();
          up.mul(sn.tensor(w)).sum().backward();
          down.mul(sn.tensor(w)).sum().neg().backward();
          optUp.step();
          optDown.step();
        }
        expectClose(await up.data(), await down.data(), { ...CLOSE, label: Opt.name });
        expect((await up.data())[2]).to.be.above(0.5);
      }
    });

    it('clipGradNorm scales gradients in place to the max norm and returns the total norm', async () => {
      const w1 = [3, -4, 1, 2, -2, 0.5];
      const w2 = [-6, 1, 0, 2.5];
      const all = [...w1, ...w2];
      const setGrads = () => {
        const p1 = param([0, 0, 0, 0, 0, 0], [2, 3]);
        const p2 = param([0, 0, 0, 0], [4]);
        const none = param([1], [1]);
        p1.mul(sn.tensor(w1, [2, 3])).sum().add(p2.mul(sn.tensor(w2)).sum()).backward();
        return [p1, p2, none];
      };
      const norms = {
        2: Math.sqrt(all.reduce((s, v) => s + v * v, 0)),
        1: all.reduce((s, v) => s + Math.abs(v), 0),
        3: Math.cbrt(all.reduce((s, v) => s + Math.abs(v) ** 3, 0)),
        Infinity: Math.max(...all.map(Math.abs)),
      };
      for (const [normType, norm] of Object.entries(norms)) {
        for (const maxNorm of [norm / 4, norm * 2]) {
          const params = setGrads();
          const total = sn.nn.utils.clipGradNorm(params, maxNorm, Number(normType));
          expect(total.shape).to.deep.equal([]);
          expectClose([await total.item()], [norm], { rtol: 1e-6, label: `norm ${normType}` });
          const coef = Math.min(1, maxNorm / (norm + 1e-6));
          expectClose(await params[0].grad.data(), w1.map((v) => v * coef), { ...CLOSE, label: `p1 grad, norm ${normType}, max ${maxNorm}` });
          expectClose(await params[1].grad.data(), w2.map((v) => v * coef), { ...CLOSE, label: `p2 grad, norm ${normType}, max ${maxNorm}` });
          expect(params[2].grad).to.equal(null);
        }
      }
      expect(await sn.nn.utils.clipGradNorm([param([1], [1])], 1).item()).to.equal(0);
    });

    it('a scheduler drives the lr the worker uses', async () => {
      const p = param([1, 2], [2]);
      const opt = new sn.optim.SGD([p], { lr: 0.5 });
      const sched = new sn.optim.lrScheduler.StepLR(opt, { stepSize: 1, gamma: 0.5 });
      const expected = [1, 2];
      for (let epoch = 0; epoch < 3; epoch++) {
        const lr = opt.paramGroups[0].lr;
        opt.zeroGrad();
        p.sum().backward();
        opt.step();
        sched.step();
        expected.forEach((_, i) => (expected[i] -= lr));
      }
      expectClose(await p.data(), expected, { ...CLOSE, label: 'StepLR-driven SGD' });
      expect(expected[0]).to.be.closeTo(1 - 0.5 - 0.25 - 0.125, 1e-12);
    });
  });
}

describe('optim (options and schedulers)', () => {
  before(async () => {
    await sn.init({ backend: 'cpu' });
  });

  it('rejects what PyTorch rejects', () => {
    const p = param([1], [1]);
    expect(() => new sn.optim.SGD([p])).to.throw(/required optimization parameter lr/);
    expect(() => new sn.optim.SGD([p], { lr: 0.1, nesterov: true })).to.throw(/Nesterov/);
    expect(() => new sn.optim.SGD([], { lr: 0.1 })).to.throw(/empty parameter list/);
    expect(() => new sn.optim.SGD(p, { lr: 0.1 })).to.throw(/single Tensor/);
    expect(() => new sn.optim.Adam([p], { betas: [0.9, 1] })).to.throw(/beta parameter at index 1/);
    expect(() => new sn.optim.RMSprop([p], { alpha: -1 })).to.throw(/invalid alpha/);
    expect(() => new sn.optim.SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 })).to.throw(/more than one parameter group/);
    expect(() => new sn.optim.Adam([p.mul(2)])).to.throw(/non-leaf/);
    expect(new sn.optim.AdamW([p]).paramGroups[0].weightDecay).to.equal(0.01);
    expect(new sn.optim.Adam([p]).paramGroups[0]).to.include({ lr: 1e-3, eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect(new sn.optim.RMSprop([p]).paramGroups[0]).to.include({ lr: 1e-2, alpha: 0.99, momentum: 0, centered: false });
  });

  it('loadStateDict rejects a dict that does not fit, changing nothing', () => {
    const p = param([1, 2], [2]);
    const opt = new sn.optim.Adam([p]);
    const other = new sn.optim.Adam([param([1, 2, 3], [3])]);
    other.zeroGrad();
    other.paramGroups[0].params[0].sum().backward();
    other.step();
    expect(() => opt.loadStateDict(other.stateDict())).to.throw(/shape \[3\]/);
    expect(() => opt.loadStateDict({ state: {}, param_groups: [] })).to.throw(/1 parameter group|0 parameter groups/);
    expect(opt.state.size).to.equal(0);
  });

  for (const c of SCHEDULERS) {
    it(`${c.name} matches PyTorch over ${c.epochs} epochs`, () => {
      const opt = new sn.optim.SGD([param([0], [1])], c.optimizer.options);
      const sched = new sn.optim.lrScheduler[c.scheduler](opt, c.options);
      expect(sched.getLastLr()).to.deep.equal([c.initialLr]);
      for (let e = 0; e < c.epochs; e++) {
        opt.step();
        sched.step();
        const [lr] = sched.getLastLr();
        expect(opt.paramGroups[0].lr).to.equal(lr);
        expect(Math.abs(lr - c.lrs[e]), `epoch ${e}: ${lr} vs ${c.lrs[e]}`).to.be.at.most(1e-6 * Math.abs(c.lrs[e]));
      }
    });
  }

  it('schedulers apply to every group from its own initial lr, and resume from stateDict', () => {
    const make = () => new sn.optim.SGD([{ params: [param([0], [1])], lr: 1 }, { params: [param([0], [1])] }], { lr: 0.1 });
    const opt = make();
    const sched = new sn.optim.lrScheduler.CosineAnnealingLR(opt, { tMax: 4 });
    for (let e = 0; e < 3; e++) sched.step();
    const expectAt = (base, e) => (base * (1 + Math.cos((Math.PI * e) / 4))) / 2;
    expect(sched.getLastLr()[0]).to.be.closeTo(expectAt(1, 3), 1e-12);
    expect(sched.getLastLr()[1]).to.be.closeTo(expectAt(0.1, 3), 1e-12);
    expect(opt.paramGroups.map((g) => g.initialLr)).to.deep.equal([1, 0.1]);

    const opt2 = make();
    opt2.loadStateDict(opt.stateDict());
    const sched2 = new sn.optim.lrScheduler.CosineAnnealingLR(opt2, { tMax: 4 });
    sched2.loadStateDict(sched.stateDict());
    sched.step();
    sched2.step();
    expect(sched2.getLastLr()).to.deep.equal(sched.getLastLr());
    expect(sched2.lastEpoch).to.equal(4);
  });
});
