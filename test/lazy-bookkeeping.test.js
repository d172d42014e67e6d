// Lazy results' bookkeeping in the engine: a read computes only what it reads, a host copy
// (device-loss insurance) computes none of the lazy results the page holds yet restores them,
// and nothing the engine makes outside a scope can be kept forever.
import { expect } from '@esm-bundle/chai';
import { executeServerCommand } from '@web/test-runner-commands';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData } from './util.js';

/** Kernels dispatched while fn runs (after a sync on both sides). */
async function kernelsOf(fn) {
  await sn.sync();
  const before = (await sn.memory()).kernels;
  await fn();
  await sn.sync();
  return (await sn.memory()).kernels - before;
}

const engine = (fn) => sn._runtime().call(fn);

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`lazy results and reads (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('a read computes the one lazy result it reads; the others stay lazy and read their own values later', async () => {
      const data = randomData(mulberry32(3), 37 * 53);
      const x = sn.tensor(data, [37, 53]);
      const a = x.mul(2);
      const b = x.add(3).exp();
      const c = x.sub(1).abs();
      let got;
      expect(await kernelsOf(async () => { got = await b.data(); })).to.equal(1);
      expectClose(got, data.map((v) => Math.exp(v + 3)), { rtol: 1e-5 });
      // A view of a lazy result: one kernel computes the view's elements (WebGPU's check for memory lost with the device computed c first, then copied it).
      expect(await kernelsOf(async () => { got = await c.transpose(0, 1).data(); })).to.equal(1);
      const want = new Float32Array(37 * 53);
      for (let i = 0; i < 37; i++) for (let j = 0; j < 53; j++) want[j * 37 + i] = Math.abs(data[i * 53 + j] - 1);
      expectClose(got, want, { rtol: 1e-6 });
      // Neither read computed a.
      expect(await kernelsOf(async () => { got = await a.data(); })).to.equal(1);
      expectClose(got, data.map((v) => v * 2), { rtol: 1e-6 });
      // Read again: computed now, no kernel.
      expect(await kernelsOf(() => b.data())).to.equal(0);
    });

    it('nothing is made outside a scope: the engine refuses, so nothing can be kept forever', async () => {
      const err = await engine((e) => e.ctx.full([3], 1)).then(() => null, (e) => e);
      expect(err?.message).to.match(/made outside ctx\.scoped\(\)/);
    });
  });
}

describe('host copies and lazy results (webgpu)', () => {
  it('a host copy computes no lazy result the page holds (only those reading weights it will update), and after a device loss they read as before', async function () {
    this.timeout(60000);
    // A host copy after every optimizer step.
    await sn.init({ backend: 'webgpu', hostCopyEvery: 1 });
    const rng = mulberry32(9);
    const data = randomData(rng, 37 * 53);
    const x = sn.tensor(data, [37, 53]);
    const w = sn.tensor(randomData(rng, 53), [53], { requiresGrad: true });
    const opt = new sn.optim.SGD([w], { lr: 0.1 });
    const step = () => { opt.zeroGrad(); x.mul(w).sum().backward(); opt.step(); };
    // Past the steps that teach the loop replay its plan (recording one computes what is lazy then).
    for (let i = 0; i < 4; i++) step();
    await sn.sync();
    const alone = await kernelsOf(step);
    const held = [x.mul(2), x.add(1).exp(), x.transpose(0, 1).sub(3)];
    const withLazy = await kernelsOf(step);
    expect(withLazy).to.equal(alone);
    // A lazy result of the weight is computed by the copy (the next step's write would compute it anyway).
    const ofWeight = w.mul(3);
    const wNow = await w.data();
    await kernelsOf(step);
    const late = x.sum(1).mul(2);
    await sn.sync();

    await executeServerCommand('crash-gpu-process');
    let report = null;
    for (let i = 0; i < 200 && !report; i++) {
      report = await sn.sync().then(() => null, (e) => e);
      if (!report) await new Promise((r) => setTimeout(r, 25));
    }
    expect(report?.message).to.match(/WebGPU device was lost/);
    // Restored from the copies of what their recipes read.
    expectClose(await held[0].data(), data.map((v) => v * 2), { rtol: 1e-6 });
    expectClose(await held[1].data(), data.map((v) => Math.exp(v + 1)), { rtol: 1e-5 });
    const want = new Float32Array(37 * 53);
    for (let i = 0; i < 37; i++) for (let j = 0; j < 53; j++) want[j * 37 + i] = data[i * 53 + j] - 3;
    expectClose(await held[2].data(), want, { rtol: 1e-6 });
    expectClose(await ofWeight.data(), wNow.map((v) => v * 3), { rtol: 1e-6 });
    // A lazy result over memory computed after the last copy cannot be restored: reading it says so.
    expect((await late.data().then(() => null, (e) => e))?.message).to.match(/an input was lost with the WebGPU device/);
  });
});
