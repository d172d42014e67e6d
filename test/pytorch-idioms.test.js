// PyTorch idioms: in-place updates (and their autograd rules), p.data,
// indexed assignment, advanced indexing with backward, topk, linspace,
// noGrad over an async body, the functional API, DataLoader collateFn, sin/cos
// accuracy. Every backend; PyTorch's results are written out where they are short.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';
import { expectClose, mulberry32, randomData, rejection } from './util.js';

const F = sn.nn.functional;

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`PyTorch idioms (${backend})`, () => {
    before(() => sn.init({ backend }));

    it('in-place add_/sub_/mul_/div_/copy_/zero_/fill_/clamp_/maskedFill_ write the same storage', async () => {
      const t = sn.tensor([[1, 2, 3], [4, 5, 6]]);
      const alias = t.detach();
      expect(t.add_(sn.tensor([10, 20, 30]))).to.equal(t);
      t.sub_(1).mul_(2).div_(sn.tensor([[2], [4]]));
      expect(await alias.array()).to.deep.equal([[10, 21, 32], [6.5, 12, 17.5]]);
      t.clamp_(7, 20);
      expect(await t.array()).to.deep.equal([[10, 20, 20], [7, 12, 17.5]]);
      t.maskedFill_(sn.tensor([[1, 0, 0], [0, 0, 1]], undefined, { dtype: 'int32' }), -1);
      expect(await t.array()).to.deep.equal([[-1, 20, 20], [7, 12, -1]]);
      t.copy_(sn.tensor([1, 2, 3], undefined, { dtype: 'int32' }));
      expect(await t.array()).to.deep.equal([[1, 2, 3], [1, 2, 3]]);
      t.fill_(4);
      expect(await alias.array()).to.deep.equal([[4, 4, 4], [4, 4, 4]]);
      t.zero_();
      expect(Array.from(await t.data())).to.deep.equal([0, 0, 0, 0, 0, 0]);
      expect(() => t.add_(sn.zeros([3, 2, 3]))).to.throw(sn.ShapeError, /output with shape \[2, 3\] doesn't match the broadcast shape \[3, 2, 3\]/);
      expect(() => sn.zeros([2], { dtype: 'int32' }).add_(0.5)).to.throw(TypeError, /float32 can't be cast to the desired output type int32/);
    });

    it('p.grad = null starts a fresh gradient; p.grad = t adds into t; a wrong shape is refused', async () => {
      const w = sn.tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
      const x = sn.tensor([[1, -1], [2, 0.5]]);
      w.mul(x).sum().backward();
      const first = w.grad;
      w.grad = null; // not disposed: the page still holds the old handle
      w.mul(x).mul(2).sum().backward();
      expect(await w.grad.array()).to.deep.equal([[2, -2], [4, 1]]);
      expect(await first.array()).to.deep.equal([[1, -1], [2, 0.5]]);
      const own = sn.tensor([[10, 10], [10, 10]]);
      w.grad = own;
      w.mul(x).sum().backward();
      expect(w.grad).to.equal(own);
      expect(await own.array()).to.deep.equal([[11, 9], [12, 10.5]]);
      expect(() => { w.grad = sn.zeros([2]); }).to.throw(sn.ShapeError, /assigned grad has shape \[2\] \(float32\) but the tensor has shape \[2, 2\]/);
      expect(w.grad).to.equal(own);
    });

    it("PyTorch's manual SGD loop: noGrad(() => p.sub_(p.grad.mul(lr))), p.grad.zero_(), p.data.add_()", async () => {
      const rng = mulberry32(3);
      const x = sn.tensor(randomData(rng, 20), [10, 2]);
      const y = x.matmul(sn.tensor([[2], [-1]])).add(0.5);
      const w = sn.zeros([2, 1], { requiresGrad: true });
      const b = sn.zeros([1], { requiresGrad: true });
      expect(() => w.sub_(1)).to.throw(/a leaf Variable that requires grad is being used in an in-place operation/);
      const losses = [];
      for (let step = 0; step < 60; step++) {
        const loss = x.matmul(w).add(b).sub(y).square().mean();
        loss.backward();
        sn.noGrad(() => {
          w.sub_(w.grad.mul(0.3));
          b.sub_(b.grad.mul(0.3));
        });
        w.grad.zero_();
        b.grad.zero_();
        if (step % 20 === 0) losses.push(await loss.item());
      }
      expectClose(await w.data(), [2, -1], { atol: 2e-3, label: 'w' });
      expectClose(await b.data(), [0.5], { atol: 2e-3, label: 'b' });
      expect(losses[2]).to.be.below(losses[0]);
      // p.data is a detached alias: in-place on it updates p, outside noGrad too, and does not require grad.
      expect(w.data.requiresGrad).to.equal(false);
      expect(w.data).to.be.instanceOf(sn.Tensor);
      w.data.add_(1);
      expectClose(await w.data(), [3, 0], { atol: 2e-3, label: 'w after data.add_' });
      expect(w.data.shape).to.deep.equal([2, 1]);
      // A tensor inside a graph cannot be updated in place.
      const h = w.mul(2);
      expect(() => h.add_(1)).to.throw(/in-place operations on a tensor inside an autograd graph/);
    });

    it('indexPut_: t[i][0][j] = 1, t[rows, cols] = v', async () => {
      const t = sn.zeros([2, 3, 4]);
      t.indexPut_([1, 0, 2], 1).indexPut_([0, -1], sn.tensor([5, 6, 7, 8]));
      const expected = Array.from({ length: 24 }, () => 0);
      expected[12 + 2] = 1;
      expected.splice(8, 4, 5, 6, 7, 8);
      expect(Array.from(await t.data())).to.deep.equal(expected);
      const m = sn.zeros([3, 4], { dtype: 'int32' });
      m.indexPut_([sn.tensor([0, 2, 2], undefined, { dtype: 'int32' }), sn.tensor([1, 3, 0], undefined, { dtype: 'int32' })], sn.tensor([7, 8, 9]));
      expect(await m.array()).to.deep.equal([[0, 7, 0, 0], [0, 0, 0, 0], [9, 0, 0, 8]]);
      expect(m.dtype).to.equal('int32');
      const p = sn.zeros([2], { requiresGrad: true });
      expect(() => p.indexPut_([0], 1)).to.throw(/leaf Variable/);
      sn.noGrad(() => p.indexPut_([0], 1));
      expect(Array.from(await p.data())).to.deep.equal([1, 0]);
    });

    it("advanced indexing out[arange(B), lengths - 1] with PyTorch's values and gradient", async () => {
      // torch: out = torch.arange(24.).reshape(3, 4, 2).requires_grad_(); out[torch.arange(3), torch.tensor([3, 0, 2]) - 1]
      const out = sn.arange(24).float().reshape(3, 4, 2).detach().requiresGrad_();
      const lengths = sn.tensor([3, 1, 2], undefined, { dtype: 'int32' });
      const last = out.index([sn.arange(3), lengths.sub(1)]);
      expect(last.shape).to.deep.equal([3, 2]);
      expect(await last.array()).to.deep.equal([[4, 5], [8, 9], [18, 19]]);
      last.mul(sn.tensor([[1, 2], [3, 4], [5, 6]])).sum().backward();
      const g = Array.from(await out.grad.data());
      const expected = Array(24).fill(0);
      [[4, 1], [5, 2], [8, 3], [9, 4], [18, 5], [19, 6]].forEach(([i, v]) => (expected[i] = v));
      expect(g).to.deep.equal(expected);
      // Broadcast index tensors, negative indices, and one index tensor for rows.
      const m = sn.arange(12).reshape(3, 4);
      const rows = sn.tensor([[0], [2]], undefined, { dtype: 'int32' });
      const cols = sn.tensor([-1, 1], undefined, { dtype: 'int32' });
      expect(await m.index([rows, cols]).array()).to.deep.equal([[3, 1], [11, 9]]);
      expect(await m.index(sn.tensor([2, 0], undefined, { dtype: 'int32' })).array()).to.deep.equal([[8, 9, 10, 11], [0, 1, 2, 3]]);
      expect(() => m.index([sn.zeros([2]), cols])).to.throw(TypeError, /int32/);
      expect(() => m.index([rows, cols, cols])).to.throw(sn.ShapeError, /3 indices for a tensor of shape \[3, 4\]/);
    });

    it('topk: values and indices like PyTorch, smallest too, backward to the chosen elements', async () => {
      const x = sn.tensor([[0.5, 3, -1, 2, 7], [4, 4.5, -2, 0, 1]], undefined, { requiresGrad: true });
      const { values, indices } = x.topk(3);
      // torch.tensor([[0.5, 3, -1, 2, 7], [4, 4.5, -2, 0, 1]]).topk(3)
      expect(await values.array()).to.deep.equal([[7, 3, 2], [4.5, 4, 1]]);
      expect(await indices.array()).to.deep.equal([[4, 1, 3], [1, 0, 4]]);
      expect(indices.dtype).to.equal('int32');
      values.mul(sn.tensor([1, 2, 3])).sum().backward();
      expect(await x.grad.array()).to.deep.equal([[0, 2, 0, 3, 1], [2, 1, 0, 0, 3]]);
      const low = x.detach().topk(2, 0, false);
      expect(await low.values.array()).to.deep.equal([[0.5, 3, -2, 0, 1], [4, 4.5, -1, 2, 7]]);
      expect(await low.indices.array()).to.deep.equal([[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]]);
      expect(() => x.topk(6)).to.throw(RangeError, /k must be an integer in \[0, 5\]/);
    });

    it('linspace matches torch.linspace', async () => {
      // torch.linspace(-1, 2, 7), torch.linspace(0, 1, 1), torch.linspace(3, -3, 4)
      expectClose(await sn.linspace(-1, 2, 7).data(), [-1, -0.5, 0, 0.5, 1, 1.5, 2], { atol: 0, rtol: 0, label: 'linspace' });
      expect(Array.from(await sn.linspace(0, 1, 1).data())).to.deep.equal([0]);
      expectClose(await sn.linspace(3, -3, 4).data(), [3, 1, -1, -3], { atol: 1e-7, label: 'descending' });
      expect(sn.linspace(0, 1, 0).shape).to.deep.equal([0]);
    });

    it('noGrad takes an async body: autograd stays off across its awaits, then comes back', async () => {
      const w = sn.ones([2], { requiresGrad: true });
      const loader = new sn.data.DataLoader(new sn.data.TensorDataset(sn.ones([4, 2])), 2);
      let inside = [];
      const result = sn.noGrad(async () => {
        for await (const [x] of loader) {
          inside.push(x.mul(w).requiresGrad);
          w.sub_(x.sum(0).mul(0.5));
        }
        return 'done';
      });
      expect(result).to.be.instanceOf(Promise);
      expect(await result).to.equal('done');
      expect(inside).to.deep.equal([false, false]);
      expect(w.mul(2).requiresGrad).to.equal(true);
      expect(Array.from(await w.data())).to.deep.equal([-1, -1]);
      const err = await rejection(sn.noGrad(async () => { throw new Error('boom'); }));
      expect(err.message).to.equal('boom');
      expect(w.mul(2).requiresGrad).to.equal(true);
    });

    it('functional: relu, logSoftmax, maxPool2d, avgPool2d, nllLoss (the MNIST example), leakyRelu, elu, softplus, oneHot, dropout(training)', async () => {
      const x = sn.tensor([-2, -0.5, 0, 1.5]);
      expect(Array.from(await F.relu(x).data())).to.deep.equal([0, 0, 0, 1.5]);
      expectClose(await F.leakyRelu(x, 0.1).data(), [-0.2, -0.05, 0, 1.5], { label: 'leakyRelu' });
      // torch.nn.functional.elu(x, 0.5), softplus(x, beta=2)
      expectClose(await F.elu(x, 0.5).data(), [-0.4323324, -0.1967347, 0, 1.5], { label: 'elu' });
      expectClose(await F.softplus(x, 2).data(), [0.0090750, 0.1566308, 0.3465736, 1.5242937], { label: 'softplus' });
      expectClose(await F.softmax(x, 0).sum().data(), [1], { label: 'softmax' });
      expect(await F.oneHot(sn.tensor([2, 0], undefined, { dtype: 'int32' }), 3).array()).to.deep.equal([[0, 0, 1], [1, 0, 0]]);
      expect(F.dropout(x, 0.5, false)).to.equal(x);
      const img = sn.arange(16).float().reshape(1, 1, 4, 4);
      expect(await F.maxPool2d(img, 2).array()).to.deep.equal([[[[5, 7], [13, 15]]]]);
      expect(await F.avgPool2d(img, 2).array()).to.deep.equal([[[[2.5, 4.5], [10.5, 12.5]]]]);
      // torch: F.avg_pool2d(img, 3, 2, 1) and with count_include_pad=False
      expectClose(await F.avgPool2d(img, 3, { stride: 2, padding: 1 }).data(), [1.1111112, 2.6666667, 5.6666665, 10], { label: 'avgPool2d pad' });
      expectClose(await F.avgPool2d(img, 3, { stride: 2, padding: 1, countIncludePad: false }).data(), [2.5, 4, 8.5, 10], { label: 'avgPool2d exclude pad' });
      const logits = sn.tensor([[1, 2, 0.5], [0, -1, 3]]);
      const target = sn.tensor([1, 2], undefined, { dtype: 'int32' });
      const nll = F.nllLoss(F.logSoftmax(logits, 1), target);
      expectClose(await nll.data(), await F.crossEntropy(logits, target).data(), { atol: 1e-6, label: 'nll of logSoftmax = crossEntropy' });
    });

    it('sin and cos are within 1e-6 of float64 for |x| up to 1e4 (range reduction)', async () => {
      const rng = mulberry32(11);
      const x = new Float32Array(4000);
      for (let i = 0; i < x.length; i++) {
        // Every scale from 1e-3 to 1e4, both signs, plus points next to multiples of pi/2.
        const scale = 10 ** (-3 + 7 * rng());
        x[i] = i % 10 === 0 ? Math.round(rng() * 6000) * (Math.PI / 2) + (rng() - 0.5) * 1e-3 : (rng() < 0.5 ? -1 : 1) * scale;
      }
      x.set([-1.4002796, 0, Math.PI, -Math.PI / 2, 1e4, -9999.5, 3 * Math.PI / 4], 0);
      const t = sn.tensor(x);
      const [sin, cos] = [await t.sin().data(), await t.cos().data()];
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(sin[i] - Math.sin(x[i])), Math.abs(cos[i] - Math.cos(x[i])));
      expect(worst, 'largest error').to.be.below(1e-6);
      // The example: torch.sin(torch.tensor(-1.4002796)) = -0.98549724
      expectClose([sin[0]], [-0.98549724], { atol: 1e-7, rtol: 0, label: 'sin(-1.4002796)' });
      expect(Array.from(await sn.tensor([Infinity, NaN]).sin().data()).every(Number.isNaN)).to.equal(true);
    });

    it('DataLoader collateFn builds each batch from the items', async () => {
      const ds = { length: 5, get: (i) => ({ seq: Array.from({ length: i + 1 }, (_, j) => j + 1), label: i % 2 }) };
      const pad = (items) => {
        const T = Math.max(...items.map((it) => it.seq.length));
        const padded = items.map((it) => [...it.seq, ...Array(T - it.seq.length).fill(0)]);
        return [sn.tensor(padded, undefined, { dtype: 'int32' }), sn.tensor(items.map((it) => it.seq.length), undefined, { dtype: 'int32' }), sn.data.defaultCollate(items.map((it) => it.label))];
      };
      const batches = [];
      for await (const [x, lengths, labels] of new sn.data.DataLoader(ds, 2, false, null, null, 0, pad)) {
        batches.push([await x.array(), Array.from(await lengths.data()), labels.dtype]);
      }
      expect(batches).to.deep.equal([
        [[[1, 0], [1, 2]], [1, 2], 'int32'],
        [[[1, 2, 3, 0], [1, 2, 3, 4]], [3, 4], 'int32'],
        [[[1, 2, 3, 4, 5]], [5], 'int32'],
      ]);
    });
  });
}
