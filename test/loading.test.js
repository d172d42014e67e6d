// Loading the library the ways pages do: from another origin (a CDN), with an
// explicit workerUrl, and as the single file dist/shadenet.js with the worker
// built in. The second origin is the repository served with CORS on another
// loopback port (web-test-runner.config.mjs).
import { expect } from '@esm-bundle/chai';
import crossOrigin from '/cross-origin.js';
import { rejection } from './util.js';

/** Trains a tiny model to fit y = 2x - 1 and returns its loss before and after. */
async function trainLine(sn) {
  sn.manualSeed(3);
  const x = sn.tensor([[0], [1], [2], [3], [4], [5], [6], [7]]);
  const y = sn.tensor([[-1], [1], [3], [5], [7], [9], [11], [13]]);
  const model = sn.sequential([sn.layers.dense({ units: 1, inputShape: [1] })]);
  model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
  const history = await model.fit(x, y, { epochs: 20, batchSize: 4 });
  return [history.history.loss[0], history.history.loss.at(-1)];
}

describe('loading from another origin', () => {
  it('the test page and the second server really are different origins', () => {
    expect(new URL(crossOrigin).origin).to.not.equal(location.origin);
  });

  it('dist/index.js imported cross-origin starts its worker by default and trains', async () => {
    const sn = await import(`${crossOrigin}/dist/index.js`);
    await sn.init({ backend: 'cpu' });
    const [first, last] = await trainLine(sn);
    expect(last).to.be.lessThan(first);
  });

  it('a cross-origin module takes a same-origin workerUrl (webgpu backend)', async () => {
    const sn = await import(`${crossOrigin}/dist/index.js?same-origin-worker`);
    await sn.init({ backend: 'webgpu', workerUrl: new URL('/dist/worker.js', location.href) });
    const [first, last] = await trainLine(sn);
    expect(last).to.be.lessThan(first);
  });

  it('a cross-origin workerUrl given as a string works', async () => {
    const sn = await import('../dist/index.js');
    await sn.init({ backend: 'cpu', workerUrl: `${crossOrigin}/dist/worker.js` });
    expect(Array.from(await sn.tensor([1, 2]).mul(3).data())).to.deep.equal([3, 6]);
  });

  it('a workerUrl that does not load rejects init, naming the URL', async () => {
    const sn = await import('../dist/index.js?missing-worker');
    const err = await rejection(sn.init({ backend: 'cpu', workerUrl: `${crossOrigin}/dist/no-such-worker.js` }));
    expect(err.message).to.include('no-such-worker.js').and.match(/could not be loaded/);
  });
});

describe('dist/shadenet.js: one file, the worker inside', () => {
  it('imported cross-origin, as a docs page does, trains', async () => {
    const sn = await import(`${crossOrigin}/dist/shadenet.js`);
    await sn.init({ backend: 'cpu' });
    const [first, last] = await trainLine(sn);
    expect(last).to.be.lessThan(first);
  });

  it('needs no worker.js beside it: it runs when imported from a blob: URL', async () => {
    const source = await (await fetch(`${crossOrigin}/dist/shadenet.js`)).text();
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    // From a blob: URL, './worker.js' cannot even be resolved, so only the inlined worker can start.
    expect(() => new URL('./worker.js', url)).to.throw();
    const sn = await import(url);
    await sn.init({ backend: 'wasm' });
    expect(sn.backend()).to.equal('wasm');
    expect(await sn.tensor([[1, 2], [3, 4]]).matmul(sn.tensor([[1], [1]])).array()).to.deep.equal([[3], [7]]);
  });
});
