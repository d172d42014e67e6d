// Memory is freed by liveness, not by the page's garbage collector: temporaries
// that were consumed by a later op are evicted under pressure (and recomputed
// if the page reads or uses them again), so a loop over large tensors stays
// within a few times its working set with no dispose, no tidy and no GC. A
// page that kept a handle still reads the right values, also after an
// in-place write to what the evicted tensor was computed from.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData } from './util.js';

const MiB = 2 ** 20;

for (const backend of ['webgpu', 'wasm']) {
  describe(`memory freed by liveness (${backend})`, () => {
    before(() => sn.init({ backend }));

    // SwiftShader takes about a second a turn on 16 MiB, so WebGPU runs 24 turns: without eviction they hold 768 MiB.
    const turns = backend === 'webgpu' ? 24 : 200;
    it(`x.mul(i).add(1).sum().item() over 16 MiB, ${turns} times, stays within 4x its working set`, async function () {
      this.timeout(180000);
      const n = 4 * MiB;
      const values = randomData(mulberry32(7), n);
      const x = sn.tensor(values, [n]);
      let total = 0;
      for (const v of values) total += v;
      let peak = 0;
      for (let i = 0; i < turns; i++) {
        const s = await x.mul(i).add(1).sum().item();
        // A float32 sum of 4M terms: compare loosely, it only guards against reading the wrong tensor.
        expect(s).to.be.closeTo(i * total + n, 1e-3 * (Math.abs(i * total) + n));
        if (i % 6 === 5) peak = Math.max(peak, (await sn.memory()).allocatedBytes);
      }
      // Working set: x and one temporary, 32 MiB.
      expect(peak / MiB).to.be.at.most(128);
    });

    it('lazy results hold no memory: consumed ones are neither counted nor evicted, and read their own values', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(10), n);
      const x = sn.tensor(data, [n]);
      const inUse = (m) => m.allocatedBytes - m.pooledBytes;
      const before = inUse(await sn.memory());
      const kept = [];
      // 24 lazy results of 4 MiB each, each used by a sum that computes it inline: 96 MiB were they memory.
      for (let i = 0; i < 24; i++) {
        const a = x.mul(i + 1);
        kept.push(a);
        await a.sum().item();
      }
      const after = await sn.memory();
      expect(after.evictedTensors).to.equal(0);
      expect((inUse(after) - before) / MiB).to.be.below(1);
      for (const i of [0, 23]) expectClose(await kept[i].data(), data.map((v) => v * (i + 1)), { rtol: 1e-6 });
    });

    it('a kept intermediate that was evicted reads its own values, and so does one computed from it (lazy results in its recipe)', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(11), n);
      const x = sn.tensor(data, [n]);
      const kept = [];
      for (let i = 0; i < 24; i++) {
        // cat computes memory (8 MiB) from x and a lazy result.
        const a = sn.cat([x, x.mul(i + 1)]);
        kept.push(a);
        await a.sum().item();
      }
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      for (const i of [0, 5, 23]) {
        const a = kept[i];
        const want = new Float32Array(2 * n);
        want.set(data);
        want.set(data.map((v) => v * (i + 1)), n);
        expectClose(await a.data(), want, { rtol: 1e-6 });
        // Used again as an input, too.
        expectClose(await a.add(0.5).sub(a).data(), new Float32Array(2 * n).fill(0.5), { atol: 1e-4 });
      }
    });

    it('an in-place write to an input first brings back what was computed from its old values', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(12), n);
      const base = sn.tensor(data, [n]);
      const pair = sn.cat([base.mul(2), base]);
      await pair.sum().item();
      // Pressure: enough consumed temporaries holding memory that `pair` is evicted.
      const pressure = async () => {
        for (let i = 0; i < 24; i++) await sn.cat([base.mul(i / 24).exp(), base]).sum().item();
      };
      await pressure();
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      base.add_(1);
      const want = new Float32Array(2 * n);
      want.set(data.map((v) => v * 2));
      want.set(data, n);
      expectClose(await pair.data(), want, { rtol: 1e-6 });
      expectClose(await base.data(), data.map((v) => v + 1), { rtol: 1e-6 });
      // And written in place itself: it keeps what was written, evicted or not.
      const y = sn.cat([base.mul(3), base]);
      await y.sum().item();
      y.copy_(sn.ones([2 * n]));
      await pressure();
      expectClose(await y.data(), new Float32Array(2 * n).fill(1));
    });

    it('a view written in place after eviction still writes its base, as views do', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(14), n);
      const x = sn.tensor(data, [n]);
      const y = sn.cat([x.mul(2), x]);
      const v = y.reshape([2048, 1024]);
      await v.sum().item();
      for (let i = 0; i < 24; i++) await sn.cat([x.mul(i / 24).exp(), x]).sum().item();
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      v.add_(1);
      const want = new Float32Array(2 * n);
      want.set(data.map((a) => a * 2 + 1));
      want.set(data.map((a) => a + 1), n);
      expectClose(await y.data(), want, { rtol: 1e-6 });
      expectClose(await v.data(), want, { rtol: 1e-6 });
    });

    it('views and chains are evicted and recomputed too', async function () {
      this.timeout(60000);
      const x = sn.tensor(randomData(mulberry32(13), MiB), [1024, 1024]);
      // Each link computes memory (cat) from a view of the last, through a lazy result.
      const chain = [sn.cat([x.mul(1)])];
      for (let i = 1; i < 40; i++) chain.push(sn.cat([chain[i - 1].reshape([1024, 1024]).transpose(0, 1).mul(1).add(1)]));
      await chain[39].sum().item();
      const { evictedTensors, allocatedBytes, pooledBytes } = await sn.memory();
      expect(evictedTensors).to.be.above(0);
      // In use, not the heap's high-water mark (wasm memory never shrinks): all 40 links would be 160 MiB.
      expect((allocatedBytes - pooledBytes) / MiB).to.be.below(100);
      const x0 = await x.data();
      // 39 adds of 1 and an odd number of transposes.
      const want = new Float32Array(MiB);
      for (let r = 0; r < 1024; r++) for (let c = 0; c < 1024; c++) want[r * 1024 + c] = x0[c * 1024 + r] + 39;
      expectClose(await chain[39].data(), want, { atol: 1e-4 });
      expectClose(await chain[0].data(), x0);
    });
  });
}
