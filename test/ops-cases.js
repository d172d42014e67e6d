// The op cases both test tiers run: the browser's (test/ops.test.js, WebGPU
// against the CPU oracle) and Node's (test/node/ops.test.mjs). Assertion-free
// so that each tier uses its own assertions: checks return what disagrees.
import { firstMismatch, mulberry32, randomData, sizeOf } from './numeric.js';

const NO_GRAD = false;

/** The cases for one `sn` module (the browser or the Node entry). */
export function opCases(sn) {
  // [name, inputs as [shape, kind], fn, differentiable = true]; kind as in randomData;
  // 'int:N' inputs are int32 and never differentiated.
  const cases = [
    // elementwise, unary
    ['neg', [[[37, 53]]], (a) => a.neg()],
    ['abs', [[[5, 7], 'away']], (a) => a.abs()],
    ['exp', [[[4, 9]]], (a) => a.exp()],
    ['log', [[[4, 9], 'positive']], (a) => a.log()],
    ['sqrt', [[[4, 9], 'positive']], (a) => a.sqrt()],
    ['sin', [[[13]]], (a) => a.sin()],
    ['cos', [[[13]]], (a) => a.cos()],
    ['square', [[[3, 5]]], (a) => a.square()],
    ['relu', [[[6, 7], 'away']], (a) => a.relu()],
    ['sigmoid', [[[6, 7]]], (a) => a.sigmoid()],
    ['tanh', [[[6, 7]]], (a) => a.tanh()],
    ['gelu', [[[6, 7]]], (a) => a.gelu()],
    ['gelu tanh', [[[6, 7]]], (a) => sn.nn.functional.gelu(a, { approximate: 'tanh' })],
    ['softplus', [[[6, 7]]], (a) => a.softplus()],
    ['elu', [[[6, 7], 'away']], (a) => a.elu()],
    ['leakyRelu', [[[6, 7], 'away']], (a) => a.leakyRelu(0.1)],
    ['clamp', [[[6, 7], 'away']], (a) => a.clamp(-0.5, 0.9)],
    // elementwise, binary with broadcasting and scalars
    ['add 37x53 + 53', [[[37, 53]], [[53]]], (a, b) => a.add(b)],
    ['sub 4x1x5 - 3x1', [[[4, 1, 5]], [[3, 1]]], (a, b) => a.sub(b)],
    ['mul 2x3x4 * 1x3x1', [[[2, 3, 4]], [[1, 3, 1]]], (a, b) => a.mul(b)],
    ['div', [[[5, 6]], [[6], 'away']], (a, b) => a.div(b)],
    ['pow tensor^tensor', [[[5, 6], 'positive'], [[5, 6]]], (a, b) => a.pow(b)],
    ['pow ^2 (negative base)', [[[5, 6]]], (a) => a.pow(2)],
    ['maximum', [[[5, 6]], [[6]]], (a, b) => a.maximum(b)],
    ['minimum', [[[5, 6]], [[5, 1]]], (a, b) => a.minimum(b)],
    ['scalar ops', [[[4, 5]]], (a) => a.add(2).mul(-1.5).sub(0.25).div(3)],
    ['rsub rdiv', [[[4, 5], 'away']], (a) => a.rsub(1).add(a.rdiv(2))],
    ['compare', [[[6, 7]], [[7]]], (a, b) => a.gt(b).add(a.le(b).mul(2)).add(a.eq(a)).add(b.ne(0)), NO_GRAD],
    ['where', [[[6, 7]], [[6, 7]], [[7]]], (c, a, b) => sn.where(c.gt(0), a, b)],
    ['1x1', [[[1, 1]], [[1, 1]]], (a, b) => a.mul(b).add(a)],
    // reductions
    ['sum all', [[[7, 11, 5]]], (a) => a.sum()],
    ['sum dim 1', [[[7, 11, 5]]], (a) => a.sum(1)],
    ['sum dims keepdim', [[[7, 11, 5]]], (a) => a.sum([0, 2], true)],
    ['sum long row', [[[3, 300]]], (a) => a.sum(-1)],
    ['mean dim -1', [[[7, 11, 5]]], (a) => a.mean(-1)],
    ['max dim 1', [[[7, 11, 5]]], (a) => a.max(1)],
    ['max all', [[[7, 11, 5]]], (a) => a.max()],
    ['min dim 0 keepdim', [[[7, 11, 5]]], (a) => a.min(0, true)],
    ['argmax dim 1', [[[7, 11, 5]]], (a) => a.argmax(1), NO_GRAD],
    ['argmin dim 2', [[[7, 11, 5]]], (a) => a.argmin(2), NO_GRAD],
    ['argmax flat', [[[7, 11, 5]]], (a) => a.argmax(), NO_GRAD],
    ['softmax dim -1', [[[5, 37]]], (a) => a.softmax(-1)],
    ['softmax dim 0', [[[5, 37]]], (a) => a.softmax(0)],
    ['logSoftmax dim 1 (3-D)', [[[3, 7, 4]]], (a) => a.logSoftmax(1)],
    ['softmax large logits', [[[4, 9]]], (a) => a.mul(1000).softmax(1)],
    // matmul
    ['matmul 37x29 @ 29x53', [[[37, 29]], [[29, 53]]], (a, b) => a.matmul(b)],
    ['matmul 1x1', [[[1, 1]], [[1, 1]]], (a, b) => a.matmul(b)],
    ['matmul K=70 (not a tile multiple)', [[[9, 70]], [[70, 67]]], (a, b) => a.matmul(b)],
    ['matmul batched 3x5x7 @ 3x7x4', [[[3, 5, 7]], [[3, 7, 4]]], (a, b) => a.matmul(b)],
    ['matmul broadcast 2x1x5x6 @ 3x6x4', [[[2, 1, 5, 6]], [[3, 6, 4]]], (a, b) => a.matmul(b)],
    ['matmul batch @ matrix', [[[4, 5, 6]], [[6, 3]]], (a, b) => a.matmul(b)],
    ['matmul 1-D @ 2-D', [[[6]], [[6, 4]]], (a, b) => a.matmul(b)],
    ['matmul 2-D @ 1-D', [[[5, 6]], [[6]]], (a, b) => a.matmul(b)],
    ['matmul 1-D @ 1-D', [[[6]], [[6]]], (a, b) => a.matmul(b)],
    ['matmul transposed operands', [[[7, 5]], [[6, 7]]], (a, b) => a.T.matmul(b.T)],
    // Outputs of at least 64 8x8 blocks run the direct variant's 8x8 thread blocks (webgpu codegen.ts directBlock).
    ['matmul 67x45 @ 45x71 (8x8 thread blocks, ragged edges, K % 4 = 1)', [[[67, 45]], [[45, 71]]], (a, b) => a.matmul(b)],
    ['matmul 8x8 blocks, transposed operands', [[[45, 67]], [[71, 45]]], (a, b) => a.T.matmul(b.T)],
    ['matmul 8x8 blocks, strided views at offsets', [[[70, 91]], [[46, 73]]], (a, b) => a.slice(0, 3).slice(1, 1, 91, 2).matmul(b.slice(0, 1).slice(1, 2))],
    ['matmul 8x8 blocks, broadcast batch 2x1x33x19 @ 3x19x35', [[[2, 1, 33, 19]], [[3, 19, 35]]], (a, b) => a.matmul(b)],
    ['linear sigmoid 67x45 -> 71 (8x8 blocks: bias and activation at the store)', [[[67, 45]], [[71, 45]], [[71]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'sigmoid' })],
    // linear: matmul + bias + activation in one kernel; weight [out, in]
    ['linear 37x29, weight 53x29, bias', [[[37, 29]], [[53, 29]], [[53]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
    ['linear without bias', [[[37, 29]], [[53, 29]]], (x, w) => sn.nn.functional.linear(x, w)],
    ['linear batched 3x5x7', [[[3, 5, 7]], [[4, 7]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
    ['linear 1-D input', [[[6]], [[4, 6]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b)],
    ['linear weight as a transposed view', [[[5, 6]], [[6, 4]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w.T, b)],
    // (The name seeds the data: these pre-activations stay clear of relu's kink at finite-difference steps.)
    ['linear relu 6x5', [[[6, 5], 'away'], [[7, 5], 'away'], [[7], 'away']], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'relu' })],
    ['linear sigmoid', [[[6, 5]], [[7, 5]], [[7]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'sigmoid' })],
    ['linear tanh batched', [[[3, 5, 7]], [[4, 7]], [[4]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'tanh' })],
    ['linear gelu', [[[6, 5]], [[7, 5]], [[7]]], (x, w, b) => sn.nn.functional.linear(x, w, b, { activation: 'gelu' })],
    ['linear relu without bias, odd sizes', [[[37, 29], 'away'], [[53, 29], 'away']], (x, w) => sn.nn.functional.linear(x, w, null, { activation: 'relu' })],
    // movement
    ['reshape', [[[6, 10]]], (a) => a.reshape(3, -1, 2).mul(2)],
    ['permute then add', [[[2, 3, 4]], [[4, 3, 2]]], (a, b) => a.permute(2, 1, 0).add(b)],
    ['transpose', [[[5, 7]]], (a) => a.transpose(0, 1).mul(a.T)],
    ['expand', [[[3, 1]]], (a) => a.expand(3, 4).mul(1)],
    ['slice with step', [[[9, 8]]], (a) => a.slice(0, 1, 8, 3).slice(1, -5)],
    ['index -1', [[[4, 3, 5]]], (a) => a.index(-1)],
    ['index dim 1', [[[4, 3, 5]]], (a) => a.index(1, 1)],
    ['cat dim 1', [[[2, 3]], [[2, 5]], [[2, 1]]], (a, b, c) => sn.cat([a, b, c], 1)],
    ['cat with empty', [[[2, 3]], [[0, 3]]], (a, b) => sn.cat([a, b], 0)],
    ['stack dim 1', [[[2, 3]], [[2, 3]]], (a, b) => sn.stack([a, b], 1)],
    ['flatten unsqueeze squeeze', [[[2, 3, 4]]], (a) => a.flatten(1).unsqueeze(0).squeeze(0).mul(1)],
    ['gather dim 1', [[[4, 6]], [[4, 5], 'int:6']], (a, i) => a.gather(1, i)],
    ['gather dim 0 with repeats', [[[3, 4]], [[7, 4], 'int:3']], (a, i) => a.gather(0, i)],
    ['indexSelect dim 0 with repeats', [[[5, 3]], [[7], 'int:5']], (a, i) => a.indexSelect(0, i)],
    ['indexSelect dim 1', [[[2, 6, 3]], [[4], 'int:6']], (a, i) => a.indexSelect(1, i)],
    ['clone', [[[3, 4]]], (a) => a.clone()],
    ['size 0 sum', [[[0, 3]]], (a) => a.sum(0), NO_GRAD],
    // int32
    ['int32 arithmetic', [[[3, 4], 'int:9'], [[4], 'int:5']], (a, b) => a.add(b).mul(2).sub(a).maximum(b), NO_GRAD],
    ['int32 sum and cast', [[[3, 4], 'int:9']], (a) => a.sum(1).float().div(2), NO_GRAD],
  ];

  return cases;
}

/** A PRNG seeded by a case name: the same inputs on every backend. */
export const rngFor = (name) => mulberry32([...name].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7));

/** Inputs and a random output weighting for a case, identical on both backends. */
function caseData(name, specs) {
  const rng = rngFor(name);
  const inputs = specs.map(([shape, kind = 'normal']) => ({ shape, kind, data: randomData(rng, sizeOf(shape), kind) }));
  return { inputs, rng };
}

const makeInputs = (sn, inputs, requiresGrad) =>
  inputs.map(({ shape, kind, data }) => sn.tensor(data, shape, { dtype: kind.startsWith('int') ? 'int32' : 'float32', requiresGrad: requiresGrad && !kind.startsWith('int') }));

/** Runs every case on the current backend: outputs, and gradients of sum(out * w). */
export async function runAll(sn, cases) {
  const results = {};
  for (const [name, specs, fn] of cases) {
    const { inputs, rng } = caseData(name, specs);
    const plain = fn(...makeInputs(sn, inputs, false));
    const entry = { out: await plain.data(), shape: [...plain.shape], dtype: plain.dtype };
    if (plain.dtype === 'float32' && inputs.some((i) => !i.kind.startsWith('int'))) {
      const ts = makeInputs(sn, inputs, true);
      const out = fn(...ts);
      if (out.requiresGrad) {
        const w = sn.tensor(randomData(rng, out.size), out.shape);
        out.mul(w).sum().backward();
        entry.grads = await Promise.all(ts.map((t) => (t.grad ? t.grad.data() : null)));
        entry.w = w;
      }
    }
    results[name] = entry;
  }
  return results;
}

/** Where one backend's result for a case disagrees with the oracle's: a message, or null. */
export function resultMismatch(name, got, oracle, tol = { atol: 1e-4, rtol: 1e-4 }) {
  if (JSON.stringify(got.shape) !== JSON.stringify(oracle.shape)) return `${name}: shape ${JSON.stringify(got.shape)}, expected ${JSON.stringify(oracle.shape)}`;
  if (got.dtype !== oracle.dtype) return `${name}: dtype ${got.dtype}, expected ${oracle.dtype}`;
  const forward = firstMismatch(got.out, oracle.out, { ...tol, label: `${name} forward` });
  if (forward) return forward;
  if (!!got.grads !== !!oracle.grads) return `${name}: gradients ${got.grads ? 'present' : 'missing'}, expected ${oracle.grads ? 'present' : 'missing'}`;
  for (const [i, og] of (oracle.grads ?? []).entries()) {
    if (og === null) {
      if (got.grads[i] !== null) return `${name} grad ${i}: expected none`;
      continue;
    }
    const m = firstMismatch(got.grads[i], og, { ...tol, label: `${name} grad ${i}` });
    if (m) return m;
  }
  return null;
}

const EPS = 1e-2;
const PROBES = 6;

/**
 * Checks a differentiable case's backward rule against central finite
 * differences on the current backend; returns the disagreements (empty when right).
 */
export async function finiteDifferenceMismatches(sn, [name, specs, fn]) {
  const { inputs, rng } = caseData(name, specs);
  const ts = makeInputs(sn, inputs, true);
  const out = fn(...ts);
  if (!out.requiresGrad) return [`${name}: the output does not require grad`];
  const wData = randomData(rng, out.size);
  const w = sn.tensor(wData, out.shape);
  out.mul(w).sum().backward();
  const loss = (datas) => fn(...makeInputs(sn, datas.map((data, i) => ({ ...inputs[i], data })), false)).mul(w).sum();
  // Every perturbed loss is queued first and read back in one go.
  const grads = await Promise.all(ts.map((t) => (t.grad ? t.grad.data() : null)));
  const probes = [];
  const losses = [];
  inputs.forEach((inp, i) => {
    // Inputs that only reach the output through a non-differentiable op (where's condition) get no grad.
    if (grads[i] === null) return;
    const n = inp.data.length;
    for (let p = 0; p < Math.min(PROBES, n); p++) {
      const j = Math.floor(rng() * n);
      for (const sign of [1, -1]) {
        const datas = inputs.map((x) => x.data.slice());
        datas[i][j] += sign * EPS;
        losses.push(loss(datas));
      }
      probes.push([i, j]);
    }
  });
  if (!probes.length) return [`${name}: no element to probe`];
  const values = await sn.stack(losses).data();
  const bad = [];
  probes.forEach(([i, j], p) => {
    const numeric = (values[2 * p] - values[2 * p + 1]) / (2 * EPS);
    const analytic = grads[i][j];
    if (!(Math.abs(numeric - analytic) <= 2e-2 + 2e-2 * Math.abs(numeric))) bad.push(`${name}: d/d input${i}[${j}]: analytic ${analytic}, numeric ${numeric}`);
  });
  return bad;
}
