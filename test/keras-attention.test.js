// Keras multiHeadAttention: Keras's weight layout, checked against a float64
// reference of Keras's math written out below (einsum projections, scores
// scaled by 1/sqrt(keyDim), masked softmax over the keys, output einsum),
// gradients by central differences of that reference, and training inside
// a functional transformer block.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData } from './util.js';

const [B, T, S, QD, VD, KD, H, K, V] = [2, 3, 5, 6, 7, 4, 2, 4, 3];

/** Keras MultiHeadAttention in float64: weights in Keras order, mask [B, T, S] (1 = attend) or null. */
function reference(q, v, k, w, mask, causal = false, keyDim = KD) {
  const [qk, qb, kk, kb, vk, vb, ok, ob] = w;
  const outDim = ob.length;
  // x [B, len, dim] @ kernel [dim, H, d] + bias [H, d] -> [B][H][len][d]
  const proj = (x, len, dim, kernel, bias, d) => {
    const r = [];
    for (let b = 0; b < B; b++) {
      r.push([]);
      for (let h = 0; h < H; h++) {
        r[b].push([]);
        for (let i = 0; i < len; i++) {
          const row = [];
          for (let e = 0; e < d; e++) {
            let acc = bias[h * d + e];
            for (let c = 0; c < dim; c++) acc += x[(b * len + i) * dim + c] * kernel[(c * H + h) * d + e];
            row.push(acc);
          }
          r[b][h].push(row);
        }
      }
    }
    return r;
  };
  const Q = proj(q, T, QD, qk, qb, K);
  const Kp = proj(k, S, keyDim, kk, kb, K);
  const Vp = proj(v, S, VD, vk, vb, V);
  const out = new Float64Array(B * T * outDim);
  const scores = new Float64Array(B * H * T * S);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const ctx = [];
      for (let h = 0; h < H; h++) {
        const logits = [];
        for (let j = 0; j < S; j++) {
          let dot = 0;
          for (let e = 0; e < K; e++) dot += Q[b][h][i][e] * Kp[b][h][j][e];
          let allowed = mask ? mask[(b * T + i) * S + j] : 1;
          if (causal && j > i) allowed = 0;
          logits.push(allowed ? dot / Math.sqrt(K) : -1e9);
        }
        const m = Math.max(...logits);
        const ex = logits.map((l) => Math.exp(l - m));
        const z = ex.reduce((a, c) => a + c, 0);
        const p = ex.map((e) => e / z);
        p.forEach((pj, j) => { scores[((b * H + h) * T + i) * S + j] = pj; });
        for (let e = 0; e < V; e++) ctx.push(p.reduce((a, pj, j) => a + pj * Vp[b][h][j][e], 0));
      }
      for (let o = 0; o < outDim; o++) {
        let acc = ob[o];
        for (let c = 0; c < H * V; c++) acc += ctx[c] * ok[c * outDim + o];
        out[(b * T + i) * outDim + o] = acc;
      }
    }
  }
  return { out, scores };
}

function setup(seed, outputShape) {
  const rng = mulberry32(seed);
  const outDim = outputShape ?? QD;
  const shapes = [[QD, H, K], [H, K], [KD, H, K], [H, K], [VD, H, V], [H, V], [H, V, outDim], [outDim]];
  const weights = shapes.map((s) => Array.from(randomData(rng, s.reduce((a, c) => a * c, 1))).map((x) => x / 3));
  const q = Array.from(randomData(rng, B * T * QD));
  const v = Array.from(randomData(rng, B * S * VD));
  const k = Array.from(randomData(rng, B * S * KD));
  // Each query row keeps at least its first key.
  const mask = Array.from({ length: B * T * S }, (_, i) => (i % S === 0 || rng() < 0.6 ? 1 : 0));
  return { shapes, weights, q, v, k, mask };
}

for (const [backend, attention] of [['webgpu', 'composed'], ['webgpu', 'fused'], ['cpu', 'composed'], ['cpu', 'fused']]) {
  describe(`sn.layers.multiHeadAttention (${backend}, attention ${attention})`, () => {
    before(() => sn.init({ backend, attention }));

    for (const masked of [false, true]) {
      it(`B=${B} T=${T} S=${S}, query/value/key features ${QD}/${VD}/${KD}, ${H} heads${masked ? ', attentionMask' : ''}: outputs, scores and d(sum)/d(query) match the float64 reference`, async () => {
        const { shapes, weights, q, v, k, mask } = setup(masked ? 11 : 12);
        const mha = sn.layers.multiHeadAttention({ numHeads: H, keyDim: K, valueDim: V });
        const query = sn.tensor(q, [B, T, QD], { requiresGrad: true });
        const args = [query, sn.tensor(v, [B, S, VD]), sn.tensor(k, [B, S, KD])];
        const opts = { returnAttentionScores: true, ...(masked ? { attentionMask: sn.tensor(mask, [B, T, S], { dtype: 'int32' }) } : {}) };
        mha.apply(...args, opts); // builds the weights
        expect(mha.getWeights().map((w) => w.shape)).to.deep.equal(shapes);
        mha.setWeights(weights);
        const [out, scores] = mha.apply(...args, opts);
        expect(out.shape).to.deep.equal([B, T, QD]);
        expect(scores.shape).to.deep.equal([B, H, T, S]);
        const ref = reference(q, v, k, weights, masked ? mask : null);
        expectClose(await out.data(), ref.out, { atol: 2e-5, rtol: 2e-5, label: 'output' });
        expectClose(await scores.data(), ref.scores, { atol: 2e-6, rtol: 2e-5, label: 'scores' });
        out.sum().backward();
        const grad = await query.grad.data();
        const eps = 1e-6;
        const sum = (qq) => reference(qq, v, k, weights, masked ? mask : null).out.reduce((a, c) => a + c, 0);
        const fd = q.map((_, i) => {
          const up = q.slice(); up[i] += eps;
          const down = q.slice(); down[i] -= eps;
          return (sum(up) - sum(down)) / (2 * eps);
        });
        expectClose(grad, fd, { atol: 1e-4, rtol: 1e-4, label: 'd(sum)/d(query)' });
      });
    }

    it('useCausalMask, key defaulting to value, outputShape, no biases: match the reference', async () => {
      const { weights, q, v } = setup(13, 5);
      const mha = sn.layers.multiHeadAttention({ numHeads: H, keyDim: K, valueDim: V, outputShape: 5, useBias: false });
      const value = sn.tensor(v, [B, S, VD]);
      mha.apply(sn.tensor(q, [B, T, QD]), value);
      const kernels = weights.filter((_, i) => i % 2 === 0);
      kernels[1] = Array.from(randomData(mulberry32(14), VD * H * K)).map((x) => x / 3); // the key kernel reads the value's features
      expect(mha.getWeights().map((w) => w.shape)).to.deep.equal([[QD, H, K], [VD, H, K], [VD, H, V], [H, V, 5]]);
      mha.setWeights(kernels);
      const out = mha.apply(sn.tensor(q, [B, T, QD]), value, { useCausalMask: true });
      const zeros = (n) => new Array(n).fill(0);
      const full = [kernels[0], zeros(H * K), kernels[1], zeros(H * K), kernels[2], zeros(H * V), kernels[3], zeros(5)];
      const ref = reference(q, v, v, full, null, true, VD);
      expect(out.shape).to.deep.equal([B, T, 5]);
      expectClose(await out.data(), ref.out, { atol: 2e-5, rtol: 2e-5, label: 'causal output' });
    });

    it('returnAttentionScores and useCausalMask in a functional model survive toJSON / modelFromJSON', async () => {
      sn.manualSeed(8);
      const inp = sn.input({ shape: [4, 6] });
      const [out, scores] = sn.layers.multiHeadAttention({ numHeads: 3, keyDim: 2 }).apply(inp, inp, { returnAttentionScores: true, useCausalMask: true });
      expect(scores.shape).to.deep.equal([null, 3, 4, 4]);
      const model = sn.model({ inputs: inp, outputs: [out, scores] });
      const back = sn.modelFromJSON(JSON.stringify(model.toJSON()));
      back.setWeights(model.getWeights());
      const x = sn.tensor(randomData(mulberry32(9), 2 * 4 * 6), [2, 4, 6]);
      const [a, b] = [model.predict(x), back.predict(x)];
      expectClose(await b[0].data(), await a[0].data(), { label: 'output after round trip' });
      const probs = await b[1].data();
      expectClose(probs, await a[1].data(), { label: 'scores after round trip' });
      // Causal: query step 0 attends only key 0.
      expect(Array.from(probs.slice(0, 4))).to.deep.equal([1, 0, 0, 0]);
    });

    it('shape errors name the shapes; unknown options are refused', () => {
      const mha = sn.layers.multiHeadAttention({ numHeads: 2, keyDim: 3 });
      const q = sn.ones([2, 3, 4]);
      expect(() => mha.apply(q, sn.ones([2, 5, 4]), { attentionMask: sn.ones([2, 3, 4]) })).to.throw(/attentionMask must be \[batch, T, S\].*value \[batch, 5, 4\].*attentionMask \[batch, 3, 4\]/);
      expect(() => mha.apply(q, sn.ones([2, 5, 4]), { attnMask: sn.ones([2, 3, 5]) })).to.throw(/options are .*attentionMask.*got attnMask/);
      expect(() => mha.apply(q)).to.throw(/query, value and an optional key/);
      expect(() => sn.layers.multiHeadAttention({ numHeads: 0, keyDim: 3 })).to.throw(/numHeads must be a positive integer/);
    });

    it('a functional transformer block (input -> MHA -> add -> layerNormalization -> dense) with a mask input fits: loss decreases', async () => {
      sn.manualSeed(5);
      const [n, t, d] = [32, 5, 8];
      const rng = mulberry32(3);
      const xData = randomData(rng, n * t * d);
      // Target: each step's mean over the sequence, a task that needs attention.
      const yData = new Float32Array(n * t * 2);
      for (let b = 0; b < n; b++) for (let i = 0; i < t; i++) for (let c = 0; c < 2; c++) {
        let s = 0;
        for (let j = 0; j < t; j++) s += xData[(b * t + j) * d + c];
        yData[(b * t + i) * 2 + c] = s / t;
      }
      const inp = sn.input({ shape: [t, d] });
      const maskIn = sn.input({ shape: [t, t] });
      const attended = sn.layers.multiHeadAttention({ numHeads: 2, keyDim: 4 }).apply(inp, inp, { attentionMask: maskIn });
      expect(attended.shape).to.deep.equal([null, t, d]);
      const normed = sn.layers.layerNormalization().apply(sn.layers.add().apply([inp, attended]));
      const model = sn.model({ inputs: [inp, maskIn], outputs: sn.layers.dense({ units: 2 }).apply(normed) });
      expect(model.summary()).to.match(/MultiHeadAttention|multi_head_attention/);
      model.compile({ optimizer: new sn.optim.Adam(model.parameters(), { lr: 0.01 }), loss: 'meanSquaredError' });
      const ones = new Float32Array(n * t * t).fill(1);
      const x = [sn.tensor(xData, [n, t, d]), sn.tensor(ones, [n, t, t])];
      const h = await model.fit(x, sn.tensor(yData, [n, t, 2]), { epochs: 15, batchSize: 8, shuffle: false });
      const loss = h.history.loss;
      expect(loss.every(Number.isFinite)).to.equal(true);
      expect(loss.at(-1)).to.be.below(loss[0] * 0.7);
      const pred = model.predict(x);
      expect(pred.shape).to.deep.equal([n, t, 2]);
    });
  });
}
