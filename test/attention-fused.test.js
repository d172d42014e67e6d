// The attention op (softmax(q kᵀ · scale + mask) v) in both lowerings, fused
// (one kernel per pass, no [L, S] scores in memory) and composed (matmul,
// softmax, matmul), on webgpu, wasm and cpu: outputs against a float64
// reference written out below, gradients against the cpu backend's composed
// path, and by finite differences; odd sizes, every mask kind, causal, and
// the module paths (MultiheadAttention both layouts, Keras) fused vs composed.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, expectFiniteDifferenceGradients, mulberry32, randomData } from './util.js';

const F = sn.nn.functional;

/** softmax(q kᵀ · scale + mask) v in float64; q [N, H, L, D] etc. as flat arrays; mask a function (n, h, i, j) -> additive. */
function reference({ n, h, l, s, d, dv }, q, k, v, mask, scale, causal) {
  const out = new Float64Array(n * h * l * dv);
  for (let b = 0; b < n * h; b++) for (let i = 0; i < l; i++) {
    const sc = [];
    for (let j = 0; j < s; j++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot += q[(b * l + i) * d + e] * k[(b * s + j) * d + e];
      sc.push(causal && j > i ? -Infinity : dot * scale + mask(Math.floor(b / h), b % h, i, j));
    }
    const top = Math.max(...sc);
    const p = sc.map((x) => (x === -Infinity ? 0 : Math.exp(x - top)));
    const sum = p.reduce((a, c) => a + c, 0);
    for (let e = 0; e < dv; e++) {
      let acc = 0;
      for (let j = 0; j < s; j++) acc += p[j] * v[(b * s + j) * dv + e];
      out[(b * l + i) * dv + e] = acc / sum;
    }
  }
  return out;
}

const SIZES = { n: 3, h: 2, l: 37, s: 53, d: 12, dv: 20 };
const CASES = [
  { name: 'no mask', sizes: SIZES },
  { name: 'float mask [L, S] + key padding [N, 1, 1, S]', sizes: SIZES, masks: ['ls', 'padding'] },
  { name: 'per-head float mask [N, H, L, S]', sizes: SIZES, masks: ['nhls'] },
  { name: 'causal, L < S, head dim 20', sizes: { ...SIZES, d: 20, dv: 12 }, causal: true },
  { name: 'causal, L > S (longer than a workgroup)', sizes: { n: 2, h: 3, l: 70, s: 41, d: 8, dv: 8 }, causal: true },
  { name: 'causal block as a float mask with key padding', sizes: SIZES, masks: ['causal', 'padding'] },
];

/** The case's inputs as data, and its mask as a tensor maker and a reference function. */
function inputs(c, seed) {
  const rng = mulberry32(seed);
  const { n, h, l, s, d, dv } = c.sizes;
  const data = { q: randomData(rng, n * h * l * d), k: randomData(rng, n * h * s * d), v: randomData(rng, n * h * s * dv), g: randomData(rng, n * h * l * dv) };
  const ls = randomData(rng, l * s);
  const nhls = randomData(rng, n * h * l * s);
  // Padding: the last keys of each batch row blocked (never all of them).
  const padded = (b, j) => j >= s - 1 - 2 * b;
  const padding = new Float32Array(n * s).map((_, i) => (padded(Math.floor(i / s), i % s) ? -Infinity : 0));
  const masks = c.masks ?? [];
  const causal = new Float32Array(l * s).map((_, e) => (e % s > Math.floor(e / s) ? -Infinity : 0));
  const fn = (b, hh, i, j) =>
    (masks.includes('causal') ? causal[i * s + j] : 0) + (masks.includes('ls') ? ls[i * s + j] : 0) + (masks.includes('nhls') ? nhls[((b * h + hh) * l + i) * s + j] : 0) + (masks.includes('padding') && padded(b, j) ? -Infinity : 0);
  const tensor = () => {
    let m = null;
    const add = (t) => { m = m ? m.add(t) : t; };
    if (masks.includes('causal')) add(sn.tensor(causal, [l, s]));
    if (masks.includes('ls')) add(sn.tensor(ls, [1, 1, l, s]));
    if (masks.includes('nhls')) add(sn.tensor(nhls, [n, h, l, s]));
    if (masks.includes('padding')) add(sn.tensor(padding, [n, 1, 1, s]));
    return m;
  };
  return { data, mask: { fn, tensor } };
}

/** Results of the cpu backend's composed path, by case: the other runs' gradients are compared with these. */
const oracle = {};

// WebGPU's fused kernels in both variants: reading rows straight from storage (what SwiftShader gets by default) and staged through workgroup memory (GPUs).
const RUNS = [['cpu', 'composed'], ['cpu', 'fused'], ['wasm', 'composed'], ['wasm', 'fused'], ['webgpu', 'composed'], ['webgpu', 'fused'], ['webgpu', 'fused', 'workgroup']];
for (const [backend, attention, kernels = 'auto'] of RUNS) {
  describe(`attention op: ${attention} on ${backend}${kernels === 'auto' ? '' : ` (${kernels} kernels)`}`, () => {
    before(() => sn.init({ backend, attention, kernels }));

    CASES.forEach((c, ci) => {
      it(c.name, async () => {
        const { n, h, l, s, d, dv } = c.sizes;
        const { data, mask } = inputs(c, 7 + ci);
        const q = sn.tensor(data.q, [n, h, l, d], { requiresGrad: true });
        const k = sn.tensor(data.k, [n, h, s, d], { requiresGrad: true });
        const v = sn.tensor(data.v, [n, h, s, dv], { requiresGrad: true });
        const scale = 1 / Math.sqrt(d);
        const m = mask.tensor();
        const out = F.scaledDotProductAttention(q, k, v, { attnMask: m, isCausal: !!c.causal, scale });
        expect(out.shape).to.deep.equal([n, h, l, dv]);
        out.mul(sn.tensor(data.g, out.shape)).sum().backward();
        const label = `${backend} ${attention} ${kernels} ${c.name}`;
        expectClose(await out.data(), reference(c.sizes, data.q, data.k, data.v, mask.fn, scale, c.causal), { atol: 2e-5, rtol: 2e-4, label });
        const grads = await Promise.all([q, k, v].map((t) => t.grad.data()));
        if (!oracle[c.name]) oracle[c.name] = grads;
        else grads.forEach((g, i) => expectClose(g, oracle[c.name][i], { atol: 3e-5, rtol: 3e-4, label: `${label} grad ${'qkv'[i]}` }));
      });
    });
  });
}

for (const [backend, kernels] of [['webgpu', 'auto'], ['webgpu', 'workgroup'], ['cpu', 'auto']]) {
  describe(`attention op: fused on ${backend} (${kernels} kernels), gradients by finite differences`, () => {
    before(() => sn.init({ backend, attention: 'fused', kernels }));

    const [n, h, l, s, d, dv] = [2, 2, 5, 7, 3, 4];
    const shapes = [[n, h, l, d], [n, h, s, d], [n, h, s, dv]];
    it('q, k, v with a per-batch mask and key padding', async () => {
      const rng = mulberry32(21);
      const mask = sn.tensor(new Float32Array(n * l * s).map((_, i) => (i % s === s - 1 && i >= l * s ? -Infinity : Math.sin(i))), [n, 1, l, s]);
      await expectFiniteDifferenceGradients(sn, 'attention', shapes, shapes.map((sh) => randomData(rng, sh.reduce((a, b) => a * b))),
        (q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: mask }), { rng, eps: 1e-2, probes: 6, tol: 1e-2 });
    });
    it('causal, q, k and v', async () => {
      const rng = mulberry32(22);
      await expectFiniteDifferenceGradients(sn, 'causal attention', shapes, shapes.map((sh) => randomData(rng, sh.reduce((a, b) => a * b))),
        (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }), { rng, eps: 1e-2, probes: 6, tol: 1e-2 });
    });
    it('a float mask that wants its gradient gets it (the composed backward)', async () => {
      const rng = mulberry32(23);
      const all = [...shapes, [1, h, l, s]];
      await expectFiniteDifferenceGradients(sn, 'attention with mask gradient', all, all.map((sh) => randomData(rng, sh.reduce((a, b) => a * b))),
        (q, k, v, m) => F.scaledDotProductAttention(q, k, v, { attnMask: m }), { rng, eps: 1e-2, probes: 6, tol: 1e-2 });
    });
  });
}

describe('attention op: the fused kernel is one kernel, no [L, S] scores', () => {
  it('webgpu: a forward is 1 kernel fused, 3 composed (matmul, softmax, matmul)', async () => {
    const counts = {};
    for (const attention of ['fused', 'composed']) {
      await sn.init({ backend: 'webgpu', attention });
      const [q, k, v] = [0, 1, 2].map((i) => sn.tensor(randomData(mulberry32(i), 2 * 3 * 9 * 4), [2, 3, 9, 4]));
      await sn.sync();
      const before = (await sn.memory()).kernels;
      F.scaledDotProductAttention(q, k, v);
      await sn.sync();
      counts[attention] = (await sn.memory()).kernels - before;
    }
    expect(counts).to.deep.equal({ fused: 1, composed: 3 });
  });
});

/** MultiheadAttention's results on random inputs: output, weights (when asked) and every gradient, as arrays. */
async function mhaRun({ batchFirst, needWeights }) {
  const [L, S, N, E, H] = [37, 53, 3, 24, 2];
  sn.manualSeed(5);
  const m = new sn.nn.MultiheadAttention(E, H, { batchFirst, kdim: 10, vdim: 7 });
  const rng = mulberry32(batchFirst ? 31 : 32);
  const shape = (len, f) => (batchFirst ? [N, len, f] : [len, N, f]);
  const [q, k, v] = [[L, E], [S, 10], [S, 7]].map(([len, f]) => sn.tensor(randomData(rng, N * len * f), shape(len, f), { requiresGrad: true }));
  const attnMask = sn.tensor(new Float32Array(L * S).map((_, i) => ((i * 7) % 11 === 0 && i % S !== 0 ? 1 : 0)), [L, S], { dtype: 'int32' });
  const keyPaddingMask = sn.tensor(new Float32Array(N * S).map((_, i) => (i % S >= S - 3 * (1 + Math.floor(i / S)) ? 1 : 0)), [N, S], { dtype: 'int32' });
  const [out, w] = m.forward(q, k, v, { attnMask, keyPaddingMask, needWeights });
  let loss = out.mul(sn.tensor(randomData(rng, out.size), out.shape)).sum();
  if (w) loss = loss.add(w.mul(sn.tensor(randomData(rng, w.size), w.shape)).sum());
  loss.backward();
  const grads = [...[q, k, v].map((t) => t.grad), ...m.parameters().map((p) => p.grad)];
  return Promise.all([out, ...(w ? [w] : []), ...grads].map((t) => t.data()));
}

describe('MultiheadAttention: fused against composed on WebGPU (L 37, S 53, head dim 12, both masks)', () => {
  for (const batchFirst of [false, true]) for (const needWeights of [false, true]) {
    it(`batchFirst ${batchFirst}, needWeights ${needWeights}: outputs and gradients agree`, async () => {
      await sn.init({ backend: 'webgpu', attention: 'composed' });
      const composed = await mhaRun({ batchFirst, needWeights });
      await sn.init({ backend: 'webgpu', attention: 'fused' });
      const fused = await mhaRun({ batchFirst, needWeights });
      expect(fused.length).to.equal(composed.length);
      fused.forEach((a, i) => expectClose(a, composed[i], { atol: 3e-5, rtol: 3e-4, label: `result ${i}` }));
    });
  }
});

describe('attention: errors', () => {
  before(() => sn.init({ backend: 'cpu' }));

  it('bad options and shapes are refused, naming them', async () => {
    const q = sn.zeros([2, 3, 4]);
    expect(() => F.scaledDotProductAttention(q, sn.zeros([2, 5, 3]), sn.zeros([2, 5, 6]))).to.throw(sn.ShapeError, /key must be \[N, H, S, D\].*query \[1, 2, 3, 4\], key \[1, 2, 5, 3\]/);
    expect(() => F.scaledDotProductAttention(q, q, q, { attnMask: sn.zeros([3, 2]) })).to.throw(sn.ShapeError, /mask must broadcast to \[N, H, L, S\] = \[1, 2, 3, 3\]/);
    expect(() => F.scaledDotProductAttention(q, q, q, { isCausal: true, attnMask: sn.zeros([3, 3]) })).to.throw(/attnMask or isCausal, not both/);
    expect(() => F.scaledDotProductAttention(q.reshape(24), q, q)).to.throw(sn.ShapeError, /\[batch, L, E\]/);
    expect(() => F.scaledDotProductAttention(q, q, q, { dropout: 0.1 })).to.throw(TypeError, /unknown option dropout/);
    let error = null;
    await sn.init({ attention: 'flash' }).catch((e) => { error = e; });
    expect(String(error)).to.match(/init: attention must be one of 'fused', 'composed', got the string "flash"/);
  });

  it('a boolean mask: true may attend (PyTorch 2), and dropoutP drops probabilities', async () => {
    sn.manualSeed(4);
    const [q, k, v] = [sn.randn([1, 3, 4]), sn.randn([1, 5, 4]), sn.randn([1, 5, 2])];
    const allowed = [[true, true, false, false, false], [true, true, true, true, true], [false, false, false, false, true]];
    const a = await F.scaledDotProductAttention(q, k, v, { attnMask: allowed }).data();
    const additive = sn.tensor(allowed.flat().map((x) => (x ? 0 : -Infinity)), [3, 5]);
    expectClose(a, await F.scaledDotProductAttention(q, k, v, { attnMask: additive }).data(), { label: 'bool vs float mask' });
    expectClose(a.slice(4, 6), await v.reshape(5, 2).index(4).data(), { label: 'one key allowed: its value' });
    const dropped = await F.scaledDotProductAttention(q, k, sn.ones([1, 5, 2]), { dropoutP: 0.5 }).data();
    expect(dropped.some((x) => Math.abs(x - 1) > 1e-3)).to.equal(true);
  });
});
