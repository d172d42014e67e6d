// sn.data: TensorDataset and DataLoader (batch contents, order, dropLast,
// shuffling reproducible with sn.manualSeed, default collation for other
// datasets) and the loader's backpressure: a loop that awaits nothing but the
// loader keeps the worker's backlog and live tensors bounded.
import { expect } from '@esm-bundle/chai';
import * as sn from '../dist/index.js';

const N = 10;
/** x row i is [i, 100 + i, 200 + i]; y[i] = i, so every batch shows which rows it holds. */
const makeDataset = () => {
  const x = sn.tensor(Float32Array.from({ length: N * 3 }, (_, k) => (k % 3) * 100 + Math.floor(k / 3)), [N, 3]);
  const y = sn.arange(N);
  return new sn.data.TensorDataset(x, y);
};

/** Every batch as plain arrays: [[xRows, yValues], ...]. */
async function collect(loader) {
  const out = [];
  for await (const [x, y] of loader) out.push([await x.array(), Array.from(await y.data())]);
  return out;
}

const rowsOf = (ids) => ids.map((i) => [i, 100 + i, 200 + i]);

for (const backend of ['webgpu', 'wasm', 'cpu']) {
  describe(`data (${backend})`, () => {
    before(async () => {
      await sn.init({ backend });
    });

    it('TensorDataset: length, get(i), and a size mismatch error', async () => {
      const ds = makeDataset();
      expect(ds.length).to.equal(N);
      const [x, y] = ds.get(4);
      expect(await x.array()).to.deep.equal([4, 104, 204]);
      expect(await y.item()).to.equal(4);
      expect(y.dtype).to.equal('int32');
      expect(() => new sn.data.TensorDataset(sn.zeros([3, 2]), sn.zeros([4]))).to.throw(/size mismatch/);
    });

    it('batches in order, with a short last batch unless dropLast', async () => {
      const ds = makeDataset();
      const loader = new sn.data.DataLoader(ds, { batchSize: 4 });
      expect(loader.length).to.equal(3);
      expect(loader.len()).to.equal(3);
      const batches = await collect(loader);
      expect(batches.map(([, y]) => y)).to.deep.equal([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
      expect(batches.map(([x]) => x)).to.deep.equal([rowsOf([0, 1, 2, 3]), rowsOf([4, 5, 6, 7]), rowsOf([8, 9])]);

      const dropped = new sn.data.DataLoader(ds, { batchSize: 4, dropLast: true });
      expect(dropped.length).to.equal(2);
      expect((await collect(dropped)).map(([, y]) => y)).to.deep.equal([[0, 1, 2, 3], [4, 5, 6, 7]]);
      expect(new sn.data.DataLoader(ds).length).to.equal(N);
    });

    it('shuffles reproducibly with sn.manualSeed, a new order every epoch, rows kept together', async () => {
      const loader = new sn.data.DataLoader(makeDataset(), { batchSize: 3, shuffle: true });
      const epochs = async () => {
        sn.manualSeed(1234);
        return [await collect(loader), await collect(loader)];
      };
      const [first, second] = await epochs();
      const [again1, again2] = await epochs();
      expect(again1).to.deep.equal(first);
      expect(again2).to.deep.equal(second);
      const order = (batches) => batches.flatMap(([, y]) => y);
      expect(order(first)).to.not.deep.equal(order(second));
      for (const batches of [first, second]) {
        expect(batches.map(([, y]) => y.length)).to.deep.equal([3, 3, 3, 1]);
        expect([...order(batches)].sort((a, b) => a - b)).to.deep.equal([...Array(N).keys()]);
        for (const [x, y] of batches) expect(x).to.deep.equal(rowsOf(y));
      }
      expect(order(first)).to.not.deep.equal([...Array(N).keys()]);
    });

    it('batches any dataset with get(i): tensors stack, numbers become tensors, arrays and objects batch per entry', async () => {
      const ds = { length: 5, get: (i) => [sn.tensor([i, 10 + i]), { label: i * 0.5 + 0.25, length: i, id: sn.tensor([i], [1], { dtype: 'int32' }) }] };
      const batches = [];
      for await (const [x, { label, length, id }] of new sn.data.DataLoader(ds, { batchSize: 2 })) {
        // Integer numbers batch as int32 (PyTorch's int64 lengths and labels), others as float32.
        expect([label.dtype, length.dtype, id.dtype]).to.deep.equal(['float32', 'int32', 'int32']);
        batches.push([await x.array(), Array.from(await label.data()), Array.from(await length.data()), await id.array()]);
      }
      expect(batches).to.deep.equal([
        [[[0, 10], [1, 11]], [0.25, 0.75], [0, 1], [[0], [1]]],
        [[[2, 12], [3, 13]], [1.25, 1.75], [2, 3], [[2], [3]]],
        [[[4, 14]], [2.25], [4], [[4]]],
      ]);
      sn.manualSeed(5);
      const shuffled = await collect(new sn.data.DataLoader({ length: 6, get: (i) => [sn.tensor([i]), i] }, { batchSize: 6, shuffle: true }));
      sn.manualSeed(5);
      const tensorShuffled = await collect(new sn.data.DataLoader(new sn.data.TensorDataset(sn.arange(6), sn.arange(6)), { batchSize: 6, shuffle: true }));
      // Both kinds of dataset draw the same permutation from the seeded stream.
      expect(shuffled[0][1]).to.deep.equal(tensorShuffled[0][1]);
    });

    it('backpressure: a loop that awaits only the loader keeps in-flight work and live tensors bounded', async () => {
      const n = 400;
      const ds = new sn.data.TensorDataset(sn.randn([n, 8]), sn.arange(n));
      const loader = new sn.data.DataLoader(ds, { batchSize: 2, shuffle: true });
      const w = sn.randn([8, 4]);
      await sn.sync();
      const base = (await sn.memory()).liveTensors;
      const lags = [];
      const live = [];
      let i = 0;
      for await (const [x, y] of loader) {
        sn.tidy(() => {
          x.matmul(w).relu().sum().add(y.float().sum());
        });
        x.dispose();
        y.dispose();
        // Probe without awaiting: it answers once the worker reaches it; count the iterations that took.
        if (i % 10 === 0 && i < loader.length - 60) {
          const at = i;
          sn.memory().then((m) => {
            lags.push(i - at);
            live.push(m.liveTensors - base);
          });
        }
        i++;
      }
      await sn.sync();
      expect(i).to.equal(n / 2);
      expect(lags.length).to.equal(14);
      // Unthrottled, every probe would answer only after the loop (60 or more iterations later).
      expect(Math.max(...lags)).to.be.below(40);
      expect(Math.max(...live)).to.be.below(20);
      await new Promise((r) => setTimeout(r, 0));
      expect((await sn.memory()).liveTensors - base).to.be.below(5);
    });
  });
}
