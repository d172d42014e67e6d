// The GPU section's cases, shared by the page (bench.js: TF.js on WebGPU) and
// Node (node.mjs: TF.js's pure-JS CPU backend). Each runs shadenet and TF.js
// on the same data; times are wall-clock after a warm-up, so shader
// compilation and first calls are excluded.
import { longestGap } from './common.js';

/**
 * The seed MLP (784-128-10, Adam) fit on 2,048 digits, ours then TF.js, each after a warm-up epoch;
 * at batch 128 also the longest page freeze during it. Shared by the GPU and CPU sections.
 */
export async function seedMlpFit({ sn, tf, digits, results }, { batchSize, epochs }) {
  const n = 2048;
  const { x, y } = await digits(n);
  const model = sn.sequential([
    sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }),
    sn.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
  const xs = sn.tensor(x, [n, 784]);
  const ys = sn.tensor(y, [n, 10]);
  await model.fit(xs, ys, { epochs: 1, batchSize });
  let t0 = performance.now();
  const oursGap = await longestGap(() => model.fit(xs, ys, { epochs, batchSize }));
  const ours = (performance.now() - t0) / epochs;

  const tm = tf.sequential({ layers: [tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), tf.layers.dense({ units: 10, activation: 'softmax' })] });
  tm.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const tx = tf.tensor2d(x, [n, 784]);
  const ty = tf.tensor2d(y, [n, 10]);
  await tm.fit(tx, ty, { epochs: 1, batchSize });
  t0 = performance.now();
  const tfGap = await longestGap(() => tm.fit(tx, ty, { epochs, batchSize }));
  const theirs = (performance.now() - t0) / epochs;
  tf.dispose([tx, ty]);
  tm.dispose();
  results.push({ name: `MLP fit 784-128-10, ${n} digits, batch ${batchSize}`, unit: 'ms/epoch', ours, tfjs: theirs });
  if (batchSize === 128) results.push({ name: 'page freeze during that fit (longest gap)', unit: 'ms', ours: oursGap, tfjs: tfGap });
}

/**
 * One training step of PyTorch's MNIST example convnet (conv 32 and conv 64 3x3, max-pool 2, dense 128, dense 10;
 * Adam, batch 64), Keras API both sides: a warm-up fit of one batch, then a timed fit of `steps` batches.
 */
export async function convnetStep({ sn, tf, digits, results }, { steps = 2 } = {}) {
  const batchSize = 64;
  const n = batchSize * steps;
  const { x, y } = await digits(n);
  const layers = (L) => [
    L.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
    L.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
    L.maxPooling2d({ poolSize: 2 }),
    L.flatten(),
    L.dense({ units: 128, activation: 'relu' }),
    L.dense({ units: 10, activation: 'softmax' }),
  ];
  const model = sn.sequential(layers(sn.layers));
  model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy' });
  const xs = sn.tensor(x, [n, 28, 28, 1]);
  const ys = sn.tensor(y, [n, 10]);
  await model.fit(xs.slice(0, batchSize), ys.slice(0, batchSize), { epochs: 1, batchSize });
  let t0 = performance.now();
  await model.fit(xs, ys, { epochs: 1, batchSize });
  const ours = (performance.now() - t0) / steps;

  const tm = tf.sequential({ layers: layers(tf.layers) });
  tm.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
  const tx = tf.tensor4d(x, [n, 28, 28, 1]);
  const ty = tf.tensor2d(y, [n, 10]);
  await tm.fit(tx.slice(0, batchSize), ty.slice(0, batchSize), { epochs: 1, batchSize });
  t0 = performance.now();
  await tm.fit(tx, ty, { epochs: 1, batchSize });
  const theirs = (performance.now() - t0) / steps;
  tf.dispose([tx, ty]);
  tm.dispose();
  results.push({ name: 'convnet train step (MNIST example), batch 64', unit: 'ms/step', ours, tfjs: theirs });
}

/**
 * host: { sn, tf, digits(n) -> { x, y } (common.js), results: [] }.
 * Returns [name, run] pairs; each run appends { name, unit, ours, tfjs } to host.results.
 */
export function benchCases(host) {
  const { sn, tf, digits } = host;

  const mlpFit = () => seedMlpFit(host, { batchSize: 128, epochs: 3 });
  const mlpFit32 = () => seedMlpFit(host, { batchSize: 32, epochs: 2 });

  async function matmulChain() {
    const size = 256;
    const reps = 20;
    const a = sn.randn([size, size]);
    await (async () => { let t = a; for (let i = 0; i < reps; i++) t = t.matmul(a).mul(0.05); await t.data(); })();
    let t0 = performance.now();
    let t = a;
    for (let i = 0; i < reps; i++) t = t.matmul(a).mul(0.05);
    await t.data();
    const ours = performance.now() - t0;
    const ta = tf.randomNormal([size, size]);
    const run = () => tf.tidy(() => { let u = ta; for (let i = 0; i < reps; i++) u = tf.mul(tf.matMul(u, ta), 0.05); return u; });
    await run().data();
    t0 = performance.now();
    await run().data();
    const theirs = performance.now() - t0;
    host.results.push({ name: `${reps} chained ${size}x${size} matmuls + read`, unit: 'ms', ours, tfjs: theirs });
  }

  /**
   * The LSTM case: LSTM(20) on sequences of 50 steps x 10 features, a sigmoid head, Adam,
   * binary cross-entropy, `fit` at batch 32 (8 steps an epoch) after a warm-up epoch; ms per step,
   * and the kernels one of our steps dispatches (sn.memory().kernels).
   */
  async function lstmFit() {
    const [n, t, f, units, batchSize, epochs] = [256, 50, 10, 20, 32, 2];
    const steps = epochs * (n / batchSize);
    const x = new Float32Array(n * t * f).map((_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
    const y = new Float32Array(n).map((_, i) => (x[i * t * f] > 0 ? 1 : 0));
    const model = sn.sequential([sn.layers.lstm({ units, inputShape: [t, f] }), sn.layers.dense({ units: 1, activation: 'sigmoid' })]);
    model.compile({ optimizer: 'adam', loss: 'binary_crossentropy' });
    const xs = sn.tensor(x, [n, t, f]);
    const ys = sn.tensor(y, [n, 1]);
    await model.fit(xs, ys, { epochs: 1, batchSize });
    const k0 = (await sn.memory()).kernels;
    let t0 = performance.now();
    await model.fit(xs, ys, { epochs, batchSize });
    const ours = (performance.now() - t0) / steps;
    console.log(`LSTM fit step: ${(((await sn.memory()).kernels - k0) / steps).toFixed(1)} kernels (sn.memory().kernels)`);
    const tm = tf.sequential({ layers: [tf.layers.lstm({ units, inputShape: [t, f] }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
    tm.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
    const tx = tf.tensor3d(x, [n, t, f]);
    const ty = tf.tensor2d(y, [n, 1]);
    await tm.fit(tx, ty, { epochs: 1, batchSize });
    t0 = performance.now();
    await tm.fit(tx, ty, { epochs, batchSize });
    const theirs = (performance.now() - t0) / steps;
    tf.dispose([tx, ty]);
    tm.dispose();
    host.results.push({ name: `LSTM(${units}) fit, seq ${t}x${f}, batch ${batchSize}`, unit: 'ms/step', ours, tfjs: theirs });
  }

  /**
   * The seed MLP trained PyTorch-style (zeroGrad, forward, cross-entropy, backward, Adam step per
   * batch of 64, one read at the end) against TF.js's optimizer.minimize loop on the same model;
   * also the kernels one of our steps dispatches (sn.memory().kernels).
   */
  async function torchLoop() {
    const n = 2048;
    const batch = 64;
    const epochs = 2;
    const { x, y } = await digits(n);
    const labels = Int32Array.from({ length: n }, (_, i) => y.subarray(i * 10, (i + 1) * 10).indexOf(1));
    const xs = sn.tensor(x, [n, 784]);
    const ys = sn.tensor(labels, [n]);
    const model = new sn.nn.Sequential(new sn.nn.Linear(784, 128), new sn.nn.ReLU(), new sn.nn.Linear(128, 10));
    const opt = new sn.optim.Adam(model.parameters(), { lr: 1e-3 });
    const lossFn = new sn.nn.CrossEntropyLoss();
    const step = (s) => {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(xs.slice(0, s, s + batch)), ys.slice(0, s, s + batch));
      loss.backward();
      opt.step();
      return loss;
    };
    const epoch = () => { let loss; for (let s = 0; s < n; s += batch) loss = step(s); return loss.item(); };
    await epoch();
    const k0 = (await sn.memory()).kernels;
    await step(0).item();
    const kernels = (await sn.memory()).kernels - k0;
    let t0 = performance.now();
    for (let e = 0; e < epochs; e++) await epoch();
    const ours = (performance.now() - t0) / epochs;
    // The worker's JS per step (Engine.exec until submitted, its share of the epoch's read included), replayed and op by op.
    const workerMs = async (plans) => {
      const execMs = async () => (await sn._runtime().call((e) => e._stepPlans(plans))).execMs;
      await epoch();
      const before = await execMs();
      await epoch();
      return ((await execMs()) - before) / (n / batch);
    };
    const replayedMs = await workerMs(true);
    const opByOpMs = await workerMs(false);
    await sn._runtime().call((e) => e._stepPlans(true));
    console.log(`PyTorch-style step, worker JS: replayed ${replayedMs.toFixed(2)} ms, op by op ${opByOpMs.toFixed(2)} ms`);

    const tm = tf.sequential({ layers: [tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), tf.layers.dense({ units: 10 })] });
    const topt = tf.train.adam(1e-3);
    const tx = tf.tensor2d(x, [n, 784]);
    const ty = tf.tensor2d(y, [n, 10]);
    const tepoch = async () => {
      let last;
      for (let s = 0; s < n; s += batch) {
        last?.dispose();
        last = tf.tidy(() => topt.minimize(() => tf.losses.softmaxCrossEntropy(ty.slice([s, 0], [batch, 10]), tm.apply(tx.slice([s, 0], [batch, 784]))), true));
      }
      await last.data();
      last.dispose();
    };
    await tepoch();
    t0 = performance.now();
    for (let e = 0; e < epochs; e++) await tepoch();
    const theirs = (performance.now() - t0) / epochs;
    tf.dispose([tx, ty]);
    tm.dispose();
    // Our Keras fit of the same model, data and batch size: the loop should keep within 1.3x of it.
    const km = sn.sequential([sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), sn.layers.dense({ units: 10, activation: 'softmax' })]);
    km.compile({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy' });
    await km.fit(xs, ys, { epochs: 1, batchSize: batch, shuffle: false });
    t0 = performance.now();
    await km.fit(xs, ys, { epochs, batchSize: batch, shuffle: false });
    const fit = (performance.now() - t0) / epochs;
    console.log(`PyTorch-style step: ${kernels} kernels (sn.memory().kernels); loop ${ours.toFixed(0)} ms/epoch vs our fit ${fit.toFixed(0)} ms/epoch on the same model and batch: loop/fit ${(ours / fit).toFixed(2)}`);
    host.results.push({ name: `PyTorch-style loop 784-128-10, Adam, batch ${batch}`, unit: 'ms/epoch', ours, tfjs: theirs });
  }

  /**
   * The seed program as a page runs it: sn.tensor(...) of 8,000 digits, build, compile, fit one
   * epoch at batch 32, all from one call; the longest gap between 10 ms timer ticks from the
   * upload through fit's end (a busy machine stretches whatever the page does in one task).
   */
  async function seedStall() {
    const n = 8000;
    const { x, y } = await digits(n);
    const ours = await longestGap(async () => {
      const model = sn.sequential([
        sn.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }),
        sn.layers.dense({ units: 10, activation: 'softmax' }),
      ]);
      model.compile({ optimizer: 'adam', loss: 'categorical_crossentropy', metrics: ['accuracy'] });
      await model.fit(sn.tensor(x, [n, 784]), sn.tensor(y, [n, 10]), { epochs: 1 });
    });
    const theirs = await longestGap(async () => {
      const tm = tf.sequential({ layers: [tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), tf.layers.dense({ units: 10, activation: 'softmax' })] });
      tm.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      const [tx, ty] = [tf.tensor2d(x, [n, 784]), tf.tensor2d(y, [n, 10])];
      await tm.fit(tx, ty, { epochs: 1, batchSize: 32 });
      tf.dispose([tx, ty]);
      tm.dispose();
    });
    host.results.push({ name: 'page freeze, sn.tensor of 8,000 digits through fit', unit: 'ms', ours, tfjs: theirs });
  }

  /**
   * Attention at seq 64, d_model 64, 4 heads (head dim 16), batch 8: the op alone (q, k, v given) and
   * nn.MultiheadAttention's self-attention (projections included), forward and forward + backward,
   * under sn.init({ attention: 'fused' }) and 'composed'; TF.js composes the same math from matMul
   * and softmax (it has no fused attention). Re-inits the engine per lowering, on its backend with default kernels.
   */
  async function attention() {
    const [n, l, e, h] = [8, 64, 64, 4];
    const hd = e / h;
    const reps = 5;
    const backend = sn.backend();
    const seeded = (size, seed) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.731 + seed) * 0.5);
    const [qd, kd, vd, xd] = [1, 2, 3, 4].map((s) => seeded(n * l * e, s));
    const wd = seeded(4 * e * e, 5);
    /** ms per call of fn, after one warm-up; fn returns what to read (all reads at the end). */
    const time = async (fn) => {
      await fn().data();
      const t0 = performance.now();
      let last;
      for (let r = 0; r < reps; r++) last = fn();
      await last.data();
      return (performance.now() - t0) / reps;
    };
    /** Times under a label, printed as it goes (this case is slow on a software adapter). */
    const logged = async (label, timer, fn) => {
      const ms = await timer(fn);
      console.log(`  ${label}: ${ms.toFixed(1)} ms`);
      return ms;
    };
    const ours = {};
    for (const lowering of ['fused', 'composed']) {
      await sn.init({ backend, attention: lowering });
      const [q, k, v] = [qd, kd, vd].map((d) => sn.tensor(d, [n, h, l, hd], { requiresGrad: true }));
      const F = sn.nn.functional;
      ours[`op forward ${lowering}`] = await logged(`op forward ${lowering}`, time, () => F.scaledDotProductAttention(q, k, v));
      ours[`op forward+backward ${lowering}`] = await logged(`op forward+backward ${lowering}`, time, () => { F.scaledDotProductAttention(q, k, v).sum().backward(); return q.grad; });
      const mha = new sn.nn.MultiheadAttention(e, h, { batchFirst: true, bias: false });
      mha.loadStateDict({ in_proj_weight: sn.tensor(wd.subarray(0, 3 * e * e), [3 * e, e]), 'out_proj.weight': sn.tensor(wd.subarray(3 * e * e), [e, e]) });
      const x = sn.tensor(xd, [n, l, e], { requiresGrad: true });
      ours[`MHA forward ${lowering}`] = await logged(`MHA forward ${lowering}`, time, () => mha.forward(x, x, x, { needWeights: false })[0]);
      ours[`MHA forward+backward ${lowering}`] = await logged(`MHA forward+backward ${lowering}`, time, () => { mha.forward(x, x, x, { needWeights: false })[0].sum().backward(); return x.grad; });
    }
    await sn.init({ backend });

    // TF.js: [n, h, l, hd] heads as [n * h, l, hd].
    const attend = (q, k, v) => tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd))), v);
    const [tq, tk, tv] = [qd, kd, vd].map((d) => tf.tensor3d(d, [n * h, l, hd]));
    const tw = tf.tensor2d(wd.subarray(0, 3 * e * e), [3 * e, e]);
    const to = tf.tensor2d(wd.subarray(3 * e * e), [e, e]);
    const tx = tf.tensor2d(xd, [n * l, e]);
    const heads = (t) => tf.reshape(tf.transpose(tf.reshape(t, [n, l, h, hd]), [0, 2, 1, 3]), [n * h, l, hd]);
    const mhaTf = (x, w, wo) => {
      const [wq, wk, wv] = tf.split(w, 3, 0);
      const y = attend(heads(tf.matMul(x, wq, false, true)), heads(tf.matMul(x, wk, false, true)), heads(tf.matMul(x, wv, false, true)));
      return tf.matMul(tf.reshape(tf.transpose(tf.reshape(y, [n, h, l, hd]), [0, 2, 1, 3]), [n * l, e]), wo, false, true);
    };
    const timeTf = async (fn) => {
      const run = () => tf.tidy(fn);
      await run().data();
      const t0 = performance.now();
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(run());
      await outs[reps - 1].data();
      const ms = (performance.now() - t0) / reps;
      tf.dispose(outs);
      return ms;
    };
    const theirs = {
      'op forward': await logged('TF.js op forward', timeTf, () => attend(tq, tk, tv)),
      'op forward+backward': await logged('TF.js op forward+backward', timeTf, () => tf.grads((q, k, v) => tf.sum(attend(q, k, v)))([tq, tk, tv])[0]),
      'MHA forward': await logged('TF.js MHA forward', timeTf, () => mhaTf(tx, tw, to)),
      // Every gradient, as ours computes (x and both projection weights).
      'MHA forward+backward': await logged('TF.js MHA forward+backward', timeTf, () => tf.grads((x, w, wo) => tf.sum(mhaTf(x, w, wo)))([tx, tw, to])[0]),
    };
    tf.dispose([tq, tk, tv, tw, to, tx]);
    for (const [what, tfjs] of Object.entries(theirs)) {
      for (const lowering of ['fused', 'composed']) host.results.push({ name: `attention ${what} (${lowering})`, unit: 'ms', ours: ours[`${what} ${lowering}`], tfjs });
    }
  }

  return [['mlp', mlpFit], ['mlp32', mlpFit32], ['matmul', matmulChain], ['lstm', lstmFit], ['torch', torchLoop], ['stall', seedStall], ['convnet', () => convnetStep(host)], ['attention', attention]];
}
