// The CPU section: shadenet's wasm backend against TensorFlow.js's wasm
// backend (XNNPACK, SIMD, threads), in one cross-origin isolated page, so
// both may use threads. Wall-clock times after a warm-up.
import * as sn from '../dist/index.js';
import { digits } from './common.js';
import { convnetStep, seedMlpFit } from './cases.js';

const tf = window.tf;
const results = [];
const params = new URLSearchParams(location.search);
const only = params.get('only');

/** One training step of an LSTM (input 10, hidden 20) on [50, 32, 10] with a linear head, MSE and Adam; the loss is read every step. */
async function lstmStep() {
  const [seq, batch, input, hidden] = [50, 32, 10, 20];
  const steps = 10;
  const x = new Float32Array(seq * batch * input).map((_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
  const y = new Float32Array(batch).map((_, i) => Math.cos(i));

  sn.manualSeed(0);
  const lstm = new sn.nn.LSTM(input, hidden);
  const head = new sn.nn.Linear(hidden, 1);
  const optimizer = new sn.optim.Adam([...lstm.parameters(), ...head.parameters()], { lr: 1e-3 });
  const xs = sn.tensor(x, [seq, batch, input]);
  const ys = sn.tensor(y, [batch, 1]);
  const step = async () => {
    optimizer.zeroGrad();
    const [out] = lstm.forward(xs);
    const loss = sn.nn.functional.mseLoss(head.forward(out.index(-1)), ys);
    loss.backward();
    optimizer.step();
    return loss.item();
  };
  await step();
  let t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const ours = (performance.now() - t0) / steps;

  // The same in TensorFlow.js: Keras layers take [batch, seq, input].
  const tm = tf.sequential({ layers: [tf.layers.lstm({ units: hidden, inputShape: [seq, input] }), tf.layers.dense({ units: 1 })] });
  tm.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const tx = tf.tidy(() => tf.tensor3d(x, [seq, batch, input]).transpose([1, 0, 2]));
  const ty = tf.tensor2d(y, [batch, 1]);
  await tm.trainOnBatch(tx, ty);
  t0 = performance.now();
  for (let i = 0; i < steps; i++) await tm.trainOnBatch(tx, ty);
  const theirs = (performance.now() - t0) / steps;
  tf.dispose([tx, ty]);
  tm.dispose();
  results.push({ name: `LSTM(10, 20) train step, seq ${seq}, batch ${batch}`, unit: 'ms/step', ours, tfjs: theirs });
}

/** GFLOP/s of `reps` independent n x n matmuls and one read (reported as time per matmul). */
async function matmul(size) {
  const reps = Math.max(2, Math.round(2 ** 30 / size ** 3));
  const a = sn.randn([size, size]);
  const b = sn.randn([size, size]);
  const ourRun = async () => { let t; for (let i = 0; i < reps; i++) t = a.matmul(b); await t.data(); };
  await ourRun();
  let t0 = performance.now();
  await ourRun();
  const ours = (performance.now() - t0) / reps;

  const ta = tf.randomNormal([size, size]);
  const tb = tf.randomNormal([size, size]);
  const theirRun = async () => { const outs = []; for (let i = 0; i < reps; i++) outs.push(tf.matMul(ta, tb)); await outs[reps - 1].data(); tf.dispose(outs); };
  await theirRun();
  t0 = performance.now();
  await theirRun();
  const theirs = (performance.now() - t0) / reps;
  tf.dispose([ta, tb]);
  const gflops = (ms) => (2 * size ** 3) / ms / 1e6;
  results.push({ name: `matmul ${size}x${size} (GFLOP/s: ${gflops(ours).toFixed(1)} vs ${gflops(theirs).toFixed(1)})`, unit: 'ms', ours, tfjs: theirs, gflops: gflops(ours) });
}

await sn.init({ backend: 'wasm', ...(params.get('threads') && { threads: Number(params.get('threads')) }) });
// TF.js picks half the cores by default; it gets as many threads as ours, so the two compare like for like.
tf.wasm.setThreadsCount(sn.backendInfo().threads);
tf.wasm.setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
await tf.setBackend('wasm');
await tf.ready();
const info = sn.backendInfo();
const header = `shadenet backend: ${info.backend} (${info.threads} thread${info.threads > 1 ? 's' : ''}), TensorFlow.js backend: ${tf.getBackend()} (${tf.wasm.getThreadsCount()} thread${tf.wasm.getThreadsCount() > 1 ? 's' : ''}), crossOriginIsolated: ${crossOriginIsolated}`;
console.log(header);
const mlpFit = (batchSize) => seedMlpFit({ sn, tf, digits, results }, { batchSize, epochs: batchSize === 32 ? 1 : 2 });
const cases = [['mlp128', () => mlpFit(128)], ['mlp32', () => mlpFit(32)], ['lstm', lstmStep], ['convnet', () => convnetStep({ sn, tf, digits, results })], ['matmul', async () => { for (const s of [256, 512, 1024]) await matmul(s); }]];
for (const [name, fn] of cases) {
  if (only && only !== name) continue;
  console.log(`running ${name} ...`);
  await fn();
}
window.benchResults = { header, results };
