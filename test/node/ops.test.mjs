// The op cases of the browser tier (test/ops-cases.js) under Node: every
// backward rule against finite differences on the CPU backend, and, where
// Dawn finds a Vulkan driver (SwiftShader here: see test/run.mjs), WebGPU
// through the `webgpu` package against the CPU oracle in both kernel variants.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as sn from 'shadenet';
import { finiteDifferenceMismatches, opCases, resultMismatch, runAll } from '../ops-cases.js';

const CASES = opCases(sn);

describe('backward rules against finite differences (CPU backend in a worker thread)', () => {
  before(() => sn.init({ backend: 'cpu' }));
  for (const c of CASES) {
    const [name, , , differentiable = true] = c;
    if (differentiable) it(name, async () => assert.deepEqual(await finiteDifferenceMismatches(sn, c), []));
  }
});

// Only where a driver is set up: without one, 'webgpu' rightly rejects (engine.test.mjs covers the fallback).
describe('ops: WebGPU through Dawn against the CPU oracle', { skip: !process.env.VK_ICD_FILENAMES && 'no Vulkan ICD configured (VK_ICD_FILENAMES)' }, () => {
  const gpu = {};
  let cpu;
  before(async () => {
    for (const kernels of ['workgroup', 'direct']) {
      await sn.init({ backend: 'webgpu', kernels });
      assert.equal(sn.backend(), 'webgpu');
      gpu[kernels] = await runAll(sn, CASES);
    }
    await sn.init({ backend: 'cpu' });
    cpu = await runAll(sn, CASES);
  });

  for (const [name] of CASES) for (const kernels of ['workgroup', 'direct']) {
    it(`${name} (${kernels})`, () => assert.equal(resultMismatch(name, gpu[kernels][name], cpu[name]), null));
  }
});
