// Recurrent modules (LSTM, GRU, RNN): PyTorch fixtures for outputs, final
// states and every gradient; padded batches with lengths against running
// each sequence alone; a float64 JS reference for any sequence length;
// finite differences for the fused op's backward (CPU).
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, forceGC, mulberry32, randomData, sizeOf } from './util.js';

const fixtures = (await (await fetch(new URL('./fixtures/torch.json', import.meta.url))).json()).layers;
const RECURRENT = ['LSTM', 'LSTM.hx', 'LSTM.2layers.batchFirst', 'LSTM.bidirectional', 'GRU', 'GRU.2layers.bidirectional.batchFirst', 'RNN.tanh', 'RNN.relu', 'LSTM.packed', 'GRU.packed'];

const fromFixture = (t, opts = {}) => sn.tensor(t.dtype === 'int32' ? Int32Array.from(t.data) : Float32Array.from(t.data), t.shape, { dtype: t.dtype, ...opts });
const build = (name, args, options) => new sn.nn[name](...args, options);
const read = async (t) => Array.from(await t.data());

/** Float64 reference of a unidirectional LSTM ([T, B, in] flat) from state-dict arrays; returns output and final states. */
function refLSTM(sd, x, T, B, inSize, H, layers) {
  const sig = (v) => 1 / (1 + Math.exp(-v));
  let inp = Array.from(x);
  let n = inSize;
  const hN = [];
  const cN = [];
  for (let l = 0; l < layers; l++) {
    const [W, U, bi, bh] = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((k) => sd[`${k}_l${l}`]);
    let h = new Float64Array(B * H);
    let c = new Float64Array(B * H);
    const out = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const h2 = new Float64Array(B * H);
      const c2 = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        const pre = (r) => {
          let s = bi[r] + bh[r];
          for (let k = 0; k < n; k++) s += W[r * n + k] * inp[(t * B + b) * n + k];
          for (let k = 0; k < H; k++) s += U[r * H + k] * h[b * H + k];
          return s;
        };
        for (let j = 0; j < H; j++) {
          const [i, f, g, o] = [sig(pre(j)), sig(pre(H + j)), Math.tanh(pre(2 * H + j)), sig(pre(3 * H + j))];
          c2[b * H + j] = f * c[b * H + j] + i * g;
          h2[b * H + j] = o * Math.tanh(c2[b * H + j]);
          out[(t * B + b) * H + j] = h2[b * H + j];
        }
      }
      h = h2;
      c = c2;
    }
    hN.push(...h);
    cN.push(...c);
    inp = Array.from(out);
    n = H;
  }
  return { out: inp, h: hN, c: cN };
}

async function stateArrays(m) {
  const sd = m.stateDict();
  const out = {};
  for (const [k, t] of Object.entries(sd)) out[k] = await t.data();
  return out;
}

// WebGPU twice: the scan kernel has a variant per kind of adapter (a thread per batch row on
// software adapters such as the SwiftShader these tests run on, a workgroup per row on GPUs).
for (const [backend, kernels] of [['webgpu', 'auto'], ['webgpu', 'workgroup'], ['wasm', 'auto'], ['cpu', 'auto']]) {
  describe(`recurrent (${backend}${kernels === 'auto' ? '' : `, ${kernels} kernels`})`, function () {
    this.timeout(600000);
    before(async () => {
      await sn.init({ backend, kernels });
      expect(sn.backend()).to.equal(backend);
      sn.manualSeed(5);
    });

    describe('PyTorch fixtures: output, h_n, c_n, input grad and every param grad', () => {
      for (const name of RECURRENT) {
        it(name, async () => {
          const fx = fixtures[name];
          expect(fx, `fixture ${name}`).to.exist;
          const m = build(fx.module, fx.args, fx.options);
          m.train(fx.training);
          const sd = Object.fromEntries(Object.entries(fx.stateDict).map(([k, t]) => [k, fromFixture(t)]));
          m.loadStateDict(sd);
          const x = fromFixture(fx.input, { requiresGrad: true });
          const hx = fx.hx && (fx.module === 'LSTM' ? [fromFixture(fx.hx.h0), fromFixture(fx.hx.c0)] : fromFixture(fx.hx.h0));
          // Plain array for the LSTM, int32 tensor for the GRU: both forms of lengths.
          const lengths = fx.lengths && (fx.module === 'LSTM' ? fx.lengths.data : fromFixture(fx.lengths));
          const [out, state] = m.forward(x, hx, lengths ? { lengths } : {});
          const [h, c] = fx.module === 'LSTM' ? state : [state];
          out.mul(fromFixture(fx.gradWeight)).sum().backward();

          const close = async (t, want, label) => {
            expect(t.shape, `${label} shape`).to.deep.equal(want.shape);
            expectClose(await read(t), want.data, { atol: 1e-5, rtol: 1e-4, label: `${name} ${label}` });
          };
          await close(out, fx.outputs.output, 'output');
          await close(h, fx.outputs.h_n, 'h_n');
          if (c) await close(c, fx.outputs.c_n, 'c_n');
          await close(x.grad, fx.inputGrad, 'input grad');
          const params = m.namedParameters();
          expect(params.map(([k]) => k)).to.deep.equal(Object.keys(fx.paramGrads));
          for (const [k, p] of params) await close(p.grad, fx.paramGrads[k], `grad ${k}`);
        });
      }
    });

    describe('lengths: a padded batch equals running each sequence alone', () => {
      const CASES = [
        ['LSTM 2 layers bidirectional, lengths array', () => new sn.nn.LSTM(3, 4, { numLayers: 2, bidirectional: true }), [2, 5, 3], false],
        ['GRU bidirectional, lengths int32 tensor', () => new sn.nn.GRU(3, 4, { bidirectional: true }), [4, 1, 5], true],
        ['RNN relu, lengths array', () => new sn.nn.RNN(3, 4, { nonlinearity: 'relu' }), [3, 5, 2], false],
      ];
      for (const [label, make, lengths, asTensor] of CASES) {
        it(label, async () => {
          const rng = mulberry32(11);
          const m = make();
          const isLSTM = m instanceof sn.nn.LSTM;
          const T = 5, B = lengths.length, In = 3, H = 4;
          const D = m.bidirectional ? 2 : 1;
          const S = m.numLayers * D;
          // Padding holds garbage on purpose: it must not matter.
          const xd = randomData(rng, T * B * In);
          const wd = randomData(rng, T * B * D * H);
          const whd = randomData(rng, S * B * H);
          const wcd = randomData(rng, S * B * H);
          const x = sn.tensor(xd, [T, B, In], { requiresGrad: true });
          const [out, st] = m.forward(x, null, { lengths: asTensor ? sn.tensor(Int32Array.from(lengths), [B], { dtype: 'int32' }) : lengths });
          const [h, c] = isLSTM ? st : [st];
          let loss = out.mul(sn.tensor(wd, [T, B, D * H])).sum().add(h.mul(sn.tensor(whd, [S, B, H])).sum());
          if (c) loss = loss.add(c.mul(sn.tensor(wcd, [S, B, H])).sum());
          loss.backward();
          const [o, hv, cv, gx] = await Promise.all([out, h, c ?? h, x.grad].map(read));
          const batchGrads = await Promise.all(m.parameters().map((p) => read(p.grad)));
          m.zeroGrad();

          for (let b = 0; b < B; b++) {
            const L = lengths[b];
            const pick = (data, rows, width, stride) => {
              const r = [];
              for (let t = 0; t < rows; t++) for (let j = 0; j < width; j++) r.push(data[(t * stride + b) * width + j]);
              return r;
            };
            const xb = sn.tensor(pick(xd, L, In, B), [L, 1, In], { requiresGrad: true });
            const [ob, sb] = m.forward(xb);
            const [hb, cb] = isLSTM ? sb : [sb];
            let lb = ob.mul(sn.tensor(pick(wd, L, D * H, B), [L, 1, D * H])).sum().add(hb.mul(sn.tensor(pick(whd, S, H, B), [S, 1, H])).sum());
            if (cb) lb = lb.add(cb.mul(sn.tensor(pick(wcd, S, H, B), [S, 1, H])).sum());
            lb.backward();
            const tag = `sequence ${b} (length ${L})`;
            expectClose(await read(ob), pick(o, L, D * H, B), { label: `${tag} output` });
            expect(pick(o, T, D * H, B).slice(L * D * H).every((v) => v === 0), `${tag}: output is zero past the length`).to.equal(true);
            expectClose(await read(hb), pick(hv, S, H, B), { label: `${tag} h_n` });
            if (cb) expectClose(await read(cb), pick(cv, S, H, B), { label: `${tag} c_n` });
            expectClose(await read(xb.grad), pick(gx, L, In, B), { label: `${tag} input grad` });
            expect(pick(gx, T, In, B).slice(L * In).every((v) => v === 0), `${tag}: input grad is zero past the length`).to.equal(true);
          }
          // Gradients of the per-sequence losses accumulated: their sum is the batched loss's gradient.
          const seqGrads = await Promise.all(m.parameters().map((p) => read(p.grad)));
          m.namedParameters().forEach(([k], i) => expectClose(seqGrads[i], batchGrads[i], { atol: 1e-4, label: `grad ${k}` }));
        });
      }
    });

    it('runs sequences of different lengths on one module (float64 reference)', async () => {
      const m = new sn.nn.LSTM(3, 4, { numLayers: 2 });
      const sd = await stateArrays(m);
      const rng = mulberry32(3);
      for (const T of [1, 7, 3, 12]) {
        const B = 2;
        const xd = randomData(rng, T * B * 3);
        const [out, [h, c]] = m.forward(sn.tensor(xd, [T, B, 3]));
        const ref = refLSTM(sd, xd, T, B, 3, 4, 2);
        expect(out.shape).to.deep.equal([T, B, 4]);
        expectClose(await read(out), ref.out, { label: `T=${T} output` });
        expectClose(await read(h), ref.h, { label: `T=${T} h_n` });
        expectClose(await read(c), ref.c, { label: `T=${T} c_n` });
      }
    });

    it('a wide layer (hidden 70: several units per thread) equals the LSTM composed of ops, output and every gradient', async () => {
      const [T, B, In, H] = [5, 3, 4, 70];
      const m = new sn.nn.LSTM(In, H);
      const rng = mulberry32(31);
      const xd = randomData(rng, T * B * In);
      const w = sn.tensor(randomData(rng, T * B * H), [T, B, H]);
      const x = sn.tensor(xd, [T, B, In], { requiresGrad: true });
      const [out, [h]] = m.forward(x);
      out.mul(w).sum().add(h.sum()).backward();
      // The same cell op by op (matmul, sigmoid, tanh kernels), on copies of the parameters.
      const shapes = Object.fromEntries(m.namedParameters().map(([k, t]) => [k, t.shape]));
      const p = Object.fromEntries(Object.entries(await stateArrays(m)).map(([k, v]) => [k, sn.tensor(v, shapes[k], { requiresGrad: true })]));
      const x2 = sn.tensor(xd, [T, B, In], { requiresGrad: true });
      let hh = sn.zeros([B, H]);
      let cc = sn.zeros([B, H]);
      const outs = [];
      for (let t = 0; t < T; t++) {
        const g = x2.index(t).matmul(p.weight_ih_l0.T).add(p.bias_ih_l0).add(hh.matmul(p.weight_hh_l0.T)).add(p.bias_hh_l0);
        const [i, f, gg, o] = [0, 1, 2, 3].map((k) => g.slice(1, k * H, (k + 1) * H));
        cc = f.sigmoid().mul(cc).add(i.sigmoid().mul(gg.tanh()));
        hh = o.sigmoid().mul(cc.tanh());
        outs.push(hh);
      }
      const composed = sn.stack(outs);
      composed.mul(w).sum().add(hh.sum()).backward();
      const opts = { atol: 1e-5, rtol: 1e-4 };
      expectClose(await read(out), await read(composed), { ...opts, label: 'output' });
      expectClose(await read(x.grad), await read(x2.grad), { ...opts, label: 'input grad' });
      for (const [k, t] of m.namedParameters()) expectClose(await read(t.grad), await read(p[k].grad), { ...opts, label: `grad ${k}` });
    });

    it('unbatched input [seq, in] equals a batch of one', async () => {
      const m = new sn.nn.GRU(3, 4, { numLayers: 2, bidirectional: true });
      const xd = randomData(mulberry32(4), 6 * 3);
      const h0 = randomData(mulberry32(5), 4 * 4);
      const [o1, h1] = m.forward(sn.tensor(xd, [6, 3]), sn.tensor(h0, [4, 4]));
      const [o2, h2] = m.forward(sn.tensor(xd, [6, 1, 3]), sn.tensor(h0, [4, 1, 4]));
      expect(o1.shape).to.deep.equal([6, 8]);
      expect(h1.shape).to.deep.equal([4, 4]);
      expectClose(await read(o1), await read(o2), { label: 'output' });
      expectClose(await read(h1), await read(h2), { label: 'h_n' });
    });

    it('applies inter-layer dropout in training mode only, seeded', async () => {
      const m = new sn.nn.LSTM(3, 8, { numLayers: 2, dropout: 0.5 });
      const x = sn.tensor(randomData(mulberry32(6), 4 * 2 * 3), [4, 2, 3]);
      sn.manualSeed(9);
      const a = await read(m.forward(x)[0]);
      sn.manualSeed(9);
      const b = await read(m.forward(x)[0]);
      expect(a).to.deep.equal(b);
      m.eval();
      const e1 = await read(m.forward(x)[0]);
      const e2 = await read(m.forward(x)[0]);
      expect(e1).to.deep.equal(e2);
      expect(e1).to.not.deep.equal(a);
      // Without dropout in eval mode, the output is the plain two-layer LSTM.
      const ref = refLSTM(await stateArrays(m), await x.data(), 4, 2, 3, 8, 2);
      expectClose(e1, ref.out, { label: 'eval output' });
    });

    it('stateDict keys, order and shapes match PyTorch; init is U(±1/sqrt(hidden))', async () => {
      const shapes = (m) => Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]]);
      expect(shapes(new sn.nn.LSTM(3, 4, { numLayers: 2, bidirectional: true }))).to.deep.equal([
        ['weight_ih_l0', [16, 3]], ['weight_hh_l0', [16, 4]], ['bias_ih_l0', [16]], ['bias_hh_l0', [16]],
        ['weight_ih_l0_reverse', [16, 3]], ['weight_hh_l0_reverse', [16, 4]], ['bias_ih_l0_reverse', [16]], ['bias_hh_l0_reverse', [16]],
        ['weight_ih_l1', [16, 8]], ['weight_hh_l1', [16, 4]], ['bias_ih_l1', [16]], ['bias_hh_l1', [16]],
        ['weight_ih_l1_reverse', [16, 8]], ['weight_hh_l1_reverse', [16, 4]], ['bias_ih_l1_reverse', [16]], ['bias_hh_l1_reverse', [16]],
      ]);
      expect(shapes(new sn.nn.GRU(3, 4, { numLayers: 2, bias: false }))).to.deep.equal([
        ['weight_ih_l0', [12, 3]], ['weight_hh_l0', [12, 4]], ['weight_ih_l1', [12, 4]], ['weight_hh_l1', [12, 4]],
      ]);
      expect(shapes(new sn.nn.RNN(2, 3))).to.deep.equal([['weight_ih_l0', [3, 2]], ['weight_hh_l0', [3, 3]], ['bias_ih_l0', [3]], ['bias_hh_l0', [3]]]);
      const lstm = new sn.nn.LSTM(8, 16);
      for (const [k, p] of lstm.namedParameters()) {
        const v = await read(p);
        expect(Math.max(...v.map(Math.abs)), k).to.be.at.most(0.25);
        expect(Math.max(...v) - Math.min(...v), k).to.be.above(0.3);
      }
    });

    it('describes itself like PyTorch and rejects bad shapes at the call', () => {
      expect(String(new sn.nn.LSTM(10, 20, { numLayers: 2, batchFirst: true }))).to.equal('LSTM(10, 20, num_layers=2, batch_first=True)');
      expect(String(new sn.nn.GRU(3, 4, { bias: false, bidirectional: true }))).to.equal('GRU(3, 4, bias=False, bidirectional=True)');
      expect(String(new sn.nn.RNN(4, 5, { numLayers: 2, dropout: 0.5, nonlinearity: 'relu' }))).to.equal('RNN(4, 5, num_layers=2, dropout=0.5)');
      const m = new sn.nn.LSTM(3, 4);
      expect(() => m.forward(sn.zeros([5, 2, 6]))).to.throw(sn.ShapeError, /input_size. Expected 3, got 6/);
      expect(() => m.forward(sn.zeros([5, 2, 3]), [sn.zeros([1, 3, 4]), sn.zeros([1, 3, 4])])).to.throw(sn.ShapeError, /expected hidden size \[1, 2, 4\], got \[1, 3, 4\]/);
      expect(() => m.forward(sn.zeros([5, 2, 3]), null, { lengths: [5, 6] })).to.throw(sn.ShapeError, /\[1, 5\].*got 6/);
      expect(() => m.forward(sn.zeros([5, 2, 3]), null, { lengths: [5] })).to.throw(sn.ShapeError, /expected 2 lengths/);
      expect(() => new sn.nn.RNN(2, 3, { nonlinearity: 'sigmoid' })).to.throw(/nonlinearity/);
    });

    it("the seed program's RNN class (LSTM, then Linear on lstmOut.index(-1)) runs on several lengths and trains", async () => {
      class RNN extends sn.nn.Module {
        constructor(inputSize, hiddenSize, outputSize) {
          super();
          this.hiddenSize = hiddenSize;
          this.lstm = new sn.nn.LSTM(inputSize, hiddenSize);
          this.fc = new sn.nn.Linear(hiddenSize, outputSize);
        }
        forward(x) {
          const [lstmOut] = this.lstm.forward(x);
          return this.fc.forward(lstmOut.index(-1));
        }
      }
      const model = new RNN(3, 6, 2);
      expect(model.namedParameters().map(([k]) => k)).to.deep.equal([
        'lstm.weight_ih_l0', 'lstm.weight_hh_l0', 'lstm.bias_ih_l0', 'lstm.bias_hh_l0', 'fc.weight', 'fc.bias',
      ]);
      const rng = mulberry32(8);
      for (const T of [1, 4, 9]) {
        const sd = await stateArrays(model);
        const lstmSd = Object.fromEntries(Object.entries(sd).filter(([k]) => k.startsWith('lstm.')).map(([k, v]) => [k.slice(5), v]));
        const xd = randomData(rng, T * 2 * 3);
        const y = model.forward(sn.tensor(xd, [T, 2, 3]));
        expect(y.shape).to.deep.equal([2, 2]);
        const last = refLSTM(lstmSd, xd, T, 2, 3, 6, 1).out.slice((T - 1) * 2 * 6);
        const want = [0, 1].flatMap((b) => [0, 1].map((o) => sd['fc.bias'][o] + [...Array(6).keys()].reduce((s, j) => s + sd['fc.weight'][o * 6 + j] * last[b * 6 + j], 0)));
        expectClose(await read(y), want, { label: `T=${T}` });
      }
      // A few steps of gradient descent on one batch lower the loss: every gradient reaches its parameter.
      const x = sn.tensor(randomData(rng, 5 * 4 * 3), [5, 4, 3]);
      const target = sn.tensor(randomData(rng, 4 * 2), [4, 2]);
      const lossOf = () => model.forward(x).sub(target).square().mean();
      const first = await lossOf().item();
      for (let step = 0; step < 10; step++) {
        model.zeroGrad();
        lossOf().backward();
        const sd = {};
        for (const [k, p] of model.namedParameters()) sd[k] = sn.noGrad(() => p.sub(p.grad.mul(0.2)));
        model.loadStateDict(sd);
      }
      expect(await lossOf().item()).to.be.below(first * 0.8);
    });

    describe('finite differences of the fused op (bidirectional, masked, with hx)', () => {
      for (const name of ['LSTM', 'GRU', 'RNN']) {
        it(name, async () => {
          const T = 3, B = 2, In = 2, H = 3;
          const m = new sn.nn[name](In, H, { bidirectional: true, ...(name === 'RNN' ? { nonlinearity: 'tanh' } : {}) });
          const rng = mulberry32(21);
          const isLSTM = name === 'LSTM';
          const base = { ...(await stateArrays(m)), x: randomData(rng, T * B * In), h0: randomData(rng, 2 * B * H), c0: randomData(rng, 2 * B * H) };
          const shapes = { ...Object.fromEntries(m.namedParameters().map(([k, p]) => [k, p.shape])), x: [T, B, In], h0: [2, B, H], c0: [2, B, H] };
          const w = { out: randomData(rng, T * B * 2 * H), h: randomData(rng, 2 * B * H), c: randomData(rng, 2 * B * H) };
          const names = Object.keys(shapes).filter((k) => isLSTM || k !== 'c0');
          // loss = sum(out * w) + sum(h_n * wh) (+ sum(c_n * wc)); second sequence shorter, so masks matter.
          const lossOf = (vals, withGrad) => {
            const ts = Object.fromEntries(names.map((k) => [k, sn.tensor(vals[k], shapes[k], { requiresGrad: withGrad })]));
            m.loadStateDict(Object.fromEntries(m.namedParameters().map(([k]) => [k, ts[k]])));
            const hx = isLSTM ? [ts.h0, ts.c0] : ts.h0;
            const [out, st] = m.forward(ts.x, hx, { lengths: [3, 2] });
            const [h, c] = isLSTM ? st : [st];
            let loss = out.mul(sn.tensor(w.out, out.shape)).sum().add(h.mul(sn.tensor(w.h, h.shape)).sum());
            if (c) loss = loss.add(c.mul(sn.tensor(w.c, c.shape)).sum());
            return { loss, ts };
          };
          m.zeroGrad();
          const { loss, ts } = lossOf(base, true);
          loss.backward();
          const params = Object.fromEntries(m.namedParameters());
          for (const k of names) {
            const g = await read(params[k] ? params[k].grad : ts[k].grad);
            // Directional derivative along a random direction, one tensor at a time.
            const dir = randomData(rng, sizeOf(shapes[k]));
            const eps = 1e-2;
            const at = async (s) => {
              const vals = { ...base, [k]: base[k].map((v, i) => v + s * eps * dir[i]) };
              return sn.noGrad(() => lossOf(vals, false).loss).item();
            };
            const numeric = ((await at(1)) - (await at(-1))) / (2 * eps);
            const analytic = g.reduce((s, v, i) => s + v * dir[i], 0);
            expect(Math.abs(numeric - analytic), `${name} ${k}: finite difference ${numeric} vs gradient ${analytic}`).to.be.below(3e-3 + 3e-3 * Math.abs(analytic));
          }
        });
      }
    });

    it('a training loop holds no worker memory across steps', async () => {
      const m = new sn.nn.GRU(3, 4, { numLayers: 2, bidirectional: true });
      const x = sn.tensor(randomData(mulberry32(12), 4 * 2 * 3), [4, 2, 3], { requiresGrad: true });
      const step = () => {
        m.zeroGrad();
        x.grad = null;
        const [out, h] = m.forward(x, null, { lengths: [4, 2] });
        out.sum().add(h.square().sum()).backward();
      };
      step();
      await sn.sync();
      await forceGC();
      await sn.sync();
      const base = await sn.memory();
      for (let i = 0; i < 4; i++) step();
      await sn.sync();
      await forceGC();
      await sn.sync();
      const after = await sn.memory();
      // At most: handles of earlier tests may still be collected in between; a leak would add some per step.
      expect(after.liveTensors, 'live tensors').to.be.at.most(base.liveTensors);
      expect(after.allocatedBytes, 'allocated bytes').to.be.at.most(base.allocatedBytes);
    });
  });
}
