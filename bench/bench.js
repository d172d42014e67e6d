// The GPU section: shadenet and TensorFlow.js (webgpu) on the same adapter
// and data in this page; the cases (cases.js) also run in Node (node.mjs).
import * as sn from '../dist/index.js';
import { digits } from './common.js';
import { benchCases } from './cases.js';

const tf = window.tf;
const results = [];
const params = new URLSearchParams(location.search);
// One case, or several comma-separated (mlp,torch): run in one page, same load.
const only = params.get('only');

await sn.init({ backend: 'webgpu', kernels: params.get('kernels') ?? 'auto' });
await tf.setBackend('webgpu').catch(() => false);
await tf.ready();
console.log(`shadenet backend: ${sn.backend()}, TensorFlow.js backend: ${tf.getBackend()}`);
for (const [name, fn] of benchCases({ sn, tf, digits, results })) {
  if (only && !only.split(',').includes(name)) continue;
  console.log(`running ${name} ...`);
  await fn();
}
window.benchResults = results;
