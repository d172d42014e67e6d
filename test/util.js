// Browser test helpers: assertions and GC on top of numeric.js (shared with the Node tier).
import { expect } from '@esm-bundle/chai';
import { firstMismatch, randomData } from './numeric.js';

export { mulberry32, randomData, sizeOf, blobData } from './numeric.js';

/** Asserts two arrays agree within atol + rtol * |expected|, naming the first bad index. */
export function expectClose(actual, expected, opts = {}) {
  const mismatch = firstMismatch(actual, expected, opts);
  if (mismatch) expect.fail(mismatch);
}

/** Forces a full garbage collection where Chromium was started with --expose-gc. */
export async function forceGC() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

/**
 * Checks the gradients backward gives for fn(...inputs) at `datas` against central finite
 * differences of sum(fn(...) * w) for a random w, at `probes` random elements of each input;
 * fails naming the first input element off by more than tol + tol * |numeric|.
 */
export async function expectFiniteDifferenceGradients(sn, name, shapes, datas, fn, { rng, eps, probes, tol }) {
  const make = (ds, grad) => ds.map((d, i) => sn.tensor(d, shapes[i], { requiresGrad: grad }));
  const ts = make(datas, true);
  const out = fn(...ts);
  const w = sn.tensor(randomData(rng, out.size), out.shape);
  out.mul(w).sum().backward();
  const grads = await Promise.all(ts.map((t) => t.grad.data()));
  const probed = [];
  const losses = [];
  datas.forEach((d, i) => {
    for (let p = 0; p < probes; p++) {
      const j = Math.floor(rng() * d.length);
      for (const sign of [1, -1]) {
        const ds = datas.map((x) => x.slice());
        ds[i][j] += sign * eps;
        losses.push(fn(...make(ds, false)).mul(w).sum());
      }
      probed.push([i, j]);
    }
  });
  const values = await sn.stack(losses).data();
  probed.forEach(([i, j], p) => {
    const numeric = (values[2 * p] - values[2 * p + 1]) / (2 * eps);
    if (!(Math.abs(numeric - grads[i][j]) <= tol + tol * Math.abs(numeric))) expect.fail(`${name}: d/d input${i}[${j}]: analytic ${grads[i][j]}, numeric ${numeric}`);
  });
}
