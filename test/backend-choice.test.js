// Backend choice where WebGPU is missing: the real engine bundle in a worker
// whose navigator.gpu is hidden.
import { expect } from '@esm-bundle/chai';
import * as Comlink from 'comlink';
import * as sn from '../dist/index.js';

describe('backend choice without WebGPU', () => {
  const spawn = () => Comlink.wrap(new Worker(new URL('./nogpu-worker.js', import.meta.url), { type: 'module' }));

  it("'webgpu' rejects naming the reason", async () => {
    const engine = spawn();
    let err;
    await engine.init('webgpu').catch((e) => (err = e));
    expect(err?.message).to.match(/WebGPU is not available: navigator.gpu is missing/);
  });

  it("'auto' falls back to the wasm backend, which computes", async () => {
    const engine = spawn();
    const info = await engine.init('auto');
    expect(info.backend).to.equal('wasm');
    expect(info.reason).to.match(/no WebGPU \(WebGPU is not available: navigator.gpu is missing/);
    expect(info.threads).to.be.at.least(1);
    await engine.exec([['data', 1, new Float32Array([1, 2, 3]), [3], 'float32', false], ['op', 'mul', 2, [1], { scalar: 2 }, false]]);
    expect(Array.from((await engine.read(2)).data)).to.deep.equal([2, 4, 6]);
  });
});

describe('backend choice under a CSP without wasm-unsafe-eval', () => {
  // web-test-runner.config.mjs serves this worker with `Content-Security-Policy: script-src 'self'`.
  const spawn = () => Comlink.wrap(new Worker(new URL('./nowasm-worker.js', import.meta.url), { type: 'module' }));

  for (const choice of ['auto', 'wasm']) {
    it(`'${choice}' falls back to the TypeScript backend and says why`, async () => {
      const engine = spawn();
      const info = await engine.init(choice);
      expect(info.backend).to.equal('cpu');
      expect(info.reason).to.match(/WebAssembly cannot be compiled here.*wasm-unsafe-eval/);
      await engine.exec([['data', 1, new Float32Array([1, 2, 3]), [3], 'float32', false], ['op', 'add', 2, [1, 1], {}, false]]);
      expect(Array.from((await engine.read(2)).data)).to.deep.equal([2, 4, 6]);
    });
  }
});

describe('backend choice with a software WebGPU adapter', () => {
  it("'auto' picks wasm on SwiftShader and names the adapter", async () => {
    await sn.init({ backend: 'auto' });
    const info = sn.backendInfo();
    expect(info.backend).to.equal('wasm');
    expect(sn.backend()).to.equal('wasm');
    expect(info.reason).to.match(/software/);
    expect(info.adapter).to.match(/swiftshader/i);
  });

  it("'webgpu' still takes the software adapter when asked", async () => {
    await sn.init({ backend: 'webgpu' });
    expect(sn.backendInfo()).to.deep.include({ backend: 'webgpu', reason: 'requested' });
  });
});
