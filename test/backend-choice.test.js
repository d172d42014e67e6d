// Backend choice where WebGPU is missing: the real engine bundle in a worker
// whose navigator.gpu is hidden.
import { expect } from '@esm-bundle/chai';
import * as Comlink from 'comlink';

describe('backend choice without WebGPU', () => {
  const spawn = () => Comlink.wrap(new Worker(new URL('./nogpu-worker.js', import.meta.url), { type: 'module' }));

  it("'webgpu' rejects naming the reason", async () => {
    const engine = spawn();
    let err;
    await engine.init('webgpu').catch((e) => (err = e));
    expect(err?.message).to.match(/WebGPU is not available: navigator.gpu is missing/);
  });

  it("'auto' falls back to the CPU backend, which computes", async () => {
    const engine = spawn();
    expect((await engine.init('auto')).backend).to.equal('cpu');
    await engine.exec([['data', 1, new Float32Array([1, 2, 3]), [3], 'float32', false], ['op', 'mul', 2, [1], { scalar: 2 }, false]]);
    expect(Array.from((await engine.read(2)).data)).to.deep.equal([2, 4, 6]);
  });
});
