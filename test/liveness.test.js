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

    it('a kept intermediate that was evicted reads its own values, and so does one computed from it', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(11), n);
      const x = sn.tensor(data, [n]);
      const kept = [];
      for (let i = 0; i < 24; i++) {
        const a = x.mul(i + 1);
        const b = a.add(0.5);
        kept.push([a, b]);
        await b.sum().item();
      }
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      for (const i of [0, 5, 23]) {
        const [a, b] = kept[i];
        expectClose(await a.data(), data.map((v) => v * (i + 1)), { rtol: 1e-6 });
        expectClose(await b.data(), data.map((v) => v * (i + 1) + 0.5), { rtol: 1e-6 });
        // Used again as an input, too.
        expectClose(await b.sub(a).data(), new Float32Array(n).fill(0.5), { atol: 1e-4 });
      }
    });

    it('an in-place write to an input first brings back what was computed from its old values', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(12), n);
      const base = sn.tensor(data, [n]);
      const doubled = base.mul(2);
      await doubled.add(1).sum().item();
      // Pressure: enough consumed temporaries that `doubled` is evicted.
      for (let i = 0; i < 24; i++) await base.mul(i / 24).exp().sum().item();
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      base.add_(1);
      expectClose(await doubled.data(), data.map((v) => v * 2), { rtol: 1e-6 });
      expectClose(await base.data(), data.map((v) => v + 1), { rtol: 1e-6 });
      // And written in place itself: it keeps what was written, evicted or not.
      const y = base.mul(3);
      await y.sum().item();
      y.copy_(sn.ones([n]));
      for (let i = 0; i < 24; i++) await y.mul(i / 24).exp().sum().item();
      expectClose(await y.data(), new Float32Array(n).fill(1));
    });

    it('a view written in place after eviction still writes its base, as views do', async function () {
      this.timeout(60000);
      const n = MiB;
      const data = randomData(mulberry32(14), n);
      const x = sn.tensor(data, [n]);
      const y = x.mul(2);
      const v = y.reshape([1024, 1024]);
      await v.sum().item();
      for (let i = 0; i < 24; i++) await x.mul(i / 24).exp().sum().item();
      expect((await sn.memory()).evictedTensors).to.be.above(0);
      v.add_(1);
      expectClose(await y.data(), data.map((a) => a * 2 + 1), { rtol: 1e-6 });
      expectClose(await v.data(), data.map((a) => a * 2 + 1), { rtol: 1e-6 });
    });

    it('views and chains are evicted and recomputed too', async function () {
      this.timeout(60000);
      const x = sn.tensor(randomData(mulberry32(13), MiB), [1024, 1024]);
      const chain = [x.mul(1)];
      for (let i = 1; i < 40; i++) chain.push(chain[i - 1].add(1).reshape([1024, 1024]).transpose(0, 1));
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
