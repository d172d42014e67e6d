// The page side: synchronous shape errors, message batching, garbage
// collection freeing worker memory, backend choice, int32 behaviour,
// autograd edge cases and seeded randomness.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, forceGC } from './util.js';

describe('backend choice', () => {
  it("'auto' takes wasm on this software (SwiftShader) adapter", async () => {
    await sn.init({ backend: 'auto' });
    expect(sn.backend()).to.equal('wasm');
  });
  it('rejects an unknown backend name', async () => {
    let err;
    await sn.init({ backend: 'tpu' }).catch((e) => (err = e));
    expect(err.message).to.match(/'auto', 'webgpu', 'wasm' or 'cpu'.*tpu/);
  });
  it('rejects a thread count that is not a positive integer', async () => {
    for (const threads of [0, 1.5, 'two']) {
      let err;
      await sn.init({ backend: 'wasm', threads }).catch((e) => (err = e));
      expect(err?.message, String(threads)).to.match(/init: threads/);
    }
  });
  it('tensors of a replaced engine are refused clearly', async () => {
    await sn.init({ backend: 'cpu' });
    const t = sn.ones([2]);
    await sn.init({ backend: 'cpu' });
    expect(() => t.add(1)).to.throw(/engine that sn.init\(\) replaced/);
  });
});

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`facade (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('shape errors throw synchronously at the calling line and name both shapes', () => {
      const a = sn.zeros([2, 3]);
      const b = sn.zeros([4]);
      let err;
      try {
        a.add(b);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(sn.ShapeError);
      expect(err.message).to.include('[2, 3]').and.include('[4]');
      expect(err.stack).to.include('facade.test.js');
      expect(() => sn.zeros([2, 3]).matmul(sn.zeros([4, 5]))).to.throw(/matmul.*\[2, 3\].*\[4, 5\]/);
      expect(() => sn.zeros([6]).reshape(4, -1)).to.throw(/reshape.*\[6\].*\[4, -1\]/);
      expect(() => sn.zeros([2, 3]).sum(2)).to.throw(/dim 2 is out of range.*\[2, 3\]/);
      expect(() => sn.cat([sn.zeros([2, 3]), sn.zeros([3, 3])], 1)).to.throw(/cat.*\[2, 3\].*\[3, 3\]/);
    });

    it('a failed op loses nothing: the engine keeps working', async () => {
      const a = sn.tensor([1, 2, 3]);
      expect(() => a.add(sn.zeros([2]))).to.throw();
      expect(Array.from(await a.mul(2).data())).to.deep.equal([2, 4, 6]);
    });

    it('200 chained ops travel in a handful of messages', async () => {
      await sn.sync();
      const before = sn.stats().messages;
      let t = sn.ones([8]);
      for (let i = 0; i < 200; i++) t = t.add(1);
      expect(await t.item().catch(() => null)).to.equal(null); // not a scalar: item() refuses
      expect((await t.data())[0]).to.equal(201);
      const sent = sn.stats().messages - before;
      expect(sent).to.be.at.most(3);
    });

    it('collected handles free worker memory: 5,000 temporaries, no dispose', async () => {
      const x = sn.randn([64]);
      await sn.sync();
      await forceGC();
      await sn.sync();
      const base = await sn.memory();
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 1000; i++) x.mul(2).add(1);
        await sn.sync();
        await forceGC();
      }
      await sn.sync();
      const after = await sn.memory();
      expect(after.liveTensors, 'live tensors').to.equal(base.liveTensors);
      expect(after.pooledBytes, 'pooled bytes').to.be.at.most(base.pooledBytes);
      expect(after.allocatedBytes, 'allocated bytes').to.be.at.most(base.allocatedBytes);
    });

    it('sn.memory().kernels counts kernels dispatched: one add is one kernel, a sum another', async () => {
      const a = sn.ones([37, 53]);
      await sn.sync();
      const before = (await sn.memory()).kernels;
      const s = a.add(1).sum();
      expect(await s.item()).to.equal(2 * 37 * 53);
      const ran = (await sn.memory()).kernels - before;
      expect(ran).to.be.at.least(1).and.at.most(3);
    });

    it('dispose and tidy free at once', async () => {
      await sn.sync();
      const base = (await sn.memory()).liveTensors;
      const kept = sn.tidy(() => {
        const a = sn.ones([3]);
        const b = a.add(1);
        return b.mul(2);
      });
      const extra = sn.ones([5]);
      extra.dispose();
      expect(() => extra.add(1)).to.throw(/disposed/);
      expect((await sn.memory()).liveTensors).to.equal(base + 1);
      expect(Array.from(await kept.data())).to.deep.equal([4, 4, 4]);
    });

    it('int32: creation, arithmetic, argmax and gather indices', async () => {
      const i = sn.tensor([3, 1, 2], undefined, { dtype: 'int32' });
      expect(i.dtype).to.equal('int32');
      const j = i.add(2).mul(3);
      expect(j.dtype).to.equal('int32');
      expect(Array.from(await j.data())).to.deep.equal([15, 9, 12]);
      expect(i.div(2).dtype).to.equal('float32');
      expect(Array.from(await i.div(2).data())).to.deep.equal([1.5, 0.5, 1]);
      const am = sn.tensor([[0.1, 0.9, 0.3], [2, -1, 5]]).argmax(1);
      expect(am.dtype).to.equal('int32');
      const amData = await am.data();
      expect(amData).to.be.instanceOf(Int32Array);
      expect(Array.from(amData)).to.deep.equal([1, 2]);
      const src = sn.tensor([[10, 11, 12], [20, 21, 22]]);
      expect(await src.gather(1, sn.tensor([[2, 0], [1, 1]], undefined, { dtype: 'int32' })).array()).to.deep.equal([[12, 10], [21, 21]]);
      expect(() => src.gather(1, sn.tensor([[0]]))).to.throw(/index must be int32/);
      expect(Array.from(await sn.arange(5).data())).to.deep.equal([0, 1, 2, 3, 4]);
      expect(sn.arange(5).dtype).to.equal('int32');
      expect(Array.from(await sn.arange(0, 1, 0.25).data())).to.deep.equal([0, 0.25, 0.5, 0.75]);
      expect(await sn.tensor([1.7, -1.7]).int().array()).to.deep.equal([1, -1]);
    });

    it('reads: data, array, item', async () => {
      const t = sn.tensor([[1, 2], [3, 4]]);
      expect(await t.array()).to.deep.equal([[1, 2], [3, 4]]);
      expect(await t.index(1).index(0).item()).to.equal(3);
      expect(await sn.tensor(7).array()).to.equal(7);
      expect(Array.from(await sn.zeros([0, 4]).data())).to.deep.equal([]);
      await t.item().then(() => expect.fail('item on 4 elements'), (e) => expect(e.message).to.match(/4 elements/));
    });

    it('autograd: leaves, broadcasting, accumulation, noGrad and detach', async () => {
      const w = sn.tensor([[1, 2, 3]], undefined, { requiresGrad: true });
      const b = sn.tensor([0.5], undefined, { requiresGrad: true });
      const x = sn.tensor([[1, 1, 1], [2, 2, 2]]);
      const y = x.mul(w).add(b).sum();
      expect(y.requiresGrad).to.equal(true);
      expect(y.isLeaf).to.equal(false);
      y.backward();
      expect(w.grad).to.not.equal(null);
      expect(await w.grad.array()).to.deep.equal([[3, 3, 3]]);
      expect(await b.grad.array()).to.deep.equal([6]);
      x.mul(w).sum().backward();
      expect(await w.grad.array()).to.deep.equal([[6, 6, 6]], 'gradients accumulate');
      expect(() => y.backward()).to.throw(/second time/);
      expect(() => x.mul(w).backward()).to.throw(/scalar outputs/);
      const n = sn.noGrad(() => x.mul(w));
      expect(n.requiresGrad).to.equal(false);
      expect(w.detach().requiresGrad).to.equal(false);
      expect(await w.detach().array()).to.deep.equal([[1, 2, 3]]);
      const g = x.mul(w);
      g.backward(sn.ones([2, 3]));
      expect(await w.grad.array()).to.deep.equal([[9, 9, 9]]);
    });

    it('manualSeed makes randn and rand reproducible', async () => {
      sn.manualSeed(42);
      const a = await sn.randn([1000]).data();
      const u = await sn.rand([1000]).data();
      sn.manualSeed(42);
      const b = await sn.randn([1000]).data();
      expect(Array.from(a)).to.deep.equal(Array.from(b));
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
      expect(Math.abs(mean)).to.be.below(0.1);
      expect(Math.abs(variance - 1)).to.be.below(0.15);
      expect(Math.min(...u)).to.be.at.least(0);
      expect(Math.max(...u)).to.be.below(1);
    });

    it('a failure in the worker reaches the next read with a clear message', async () => {
      const bad = sn.tensor([1, 2]).gather(0, sn.tensor([5], undefined, { dtype: 'int32' }));
      let err;
      await bad.data().catch((e) => (err = e));
      expect(err.message).to.match(/gather: index 5 is out of range for dim 0 with size 2/);
      expect(Array.from(await sn.tensor([1, 2]).add(1).data())).to.deep.equal([2, 3]);
    });
  });
}

describe('randn and rand agree across backends for one seed', () => {
  it('same stream on WebGPU and CPU', async () => {
    const draw = async (backend) => {
      await sn.init({ backend });
      sn.manualSeed(7);
      return [await sn.randn([257]).data(), await sn.rand([33]).data()];
    };
    const [gn, gu] = await draw('webgpu');
    const [cn, cu] = await draw('cpu');
    const [wn, wu] = await draw('wasm');
    expectClose(gu, cu, { atol: 0, rtol: 0, label: 'rand' });
    expectClose(wu, cu, { atol: 0, rtol: 0, label: 'rand (wasm)' });
    expectClose(wn, cn, { atol: 0, rtol: 0, label: 'randn (wasm)' });
    // The GPU's log and cos differ from Math's in the last bits.
    expectClose(gn, cn, { atol: 1e-3, rtol: 1e-3, label: 'randn' });
  });
});
