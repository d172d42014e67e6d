// The digit data and the small digit classifier that the MNIST, draw and
// personalization demos share.
import * as sn from './dist/index.js';

/** Training digits come first in data/mnist.bin; the last HELD_OUT are never trained on. */
export const HELD_OUT = 2000;

/**
 * Every digit from data/mnist.bin (one fetch): { n, pixels: Uint8Array [n*784], labels: Uint8Array [n] }.
 * Views on one buffer, so nothing is parsed on the page.
 */
export async function loadDigits(url = new URL('./data/mnist.bin', import.meta.url)) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load the digits (${url}: HTTP ${res.status}); run \`npm start\`, which builds them`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const n = bytes.length / 785;
  if (!Number.isInteger(n)) throw new Error(`${url} is not a digits file: ${bytes.length} bytes is not a multiple of 785`);
  return { n, pixels: bytes.subarray(0, n * 784), labels: bytes.subarray(n * 784) };
}

/** Samples [start, start+count) as an x tensor scaled to 0..1 (the scaling runs in the worker). */
export function digitsTensor({ pixels }, start, count) {
  return sn.tensor(new Float32Array(pixels.subarray(start * 784, (start + count) * 784)), [count, 784]).div(255);
}

/** One-hot labels for samples [start, start+count). */
export function oneHot({ labels }, start, count) {
  const y = new Float32Array(count * 10);
  for (let i = 0; i < count; i++) y[i * 10 + labels[start + i]] = 1;
  return sn.tensor(y, [count, 10]);
}

/** 784 -> 64 -> 10, written PyTorch-style; returns logits. */
export class DigitNet extends sn.nn.Module {
  fc1 = new sn.nn.Linear(784, 64);
  relu = new sn.nn.ReLU();
  fc2 = new sn.nn.Linear(64, 10);
  forward(x) {
    return this.fc2.forward(this.relu.forward(this.fc1.forward(x)));
  }
}

const BASE_MODEL_URL = new URL('./models/digits-base.safetensors', import.meta.url);

/** DigitNet with the weights the demos ship (made by tools/make-base-model.mjs). */
export async function loadBaseModel() {
  const res = await fetch(BASE_MODEL_URL);
  if (!res.ok) throw new Error(`could not load the base model (${BASE_MODEL_URL}: HTTP ${res.status})`);
  const model = new DigitNet();
  let state;
  try {
    state = await sn.safetensors.load(new Uint8Array(await res.arrayBuffer()));
  } catch (e) {
    throw new Error(`the base model ${BASE_MODEL_URL} is not a valid safetensors file (${e.message})`);
  }
  model.loadStateDict(state);
  model.eval();
  return model;
}

/** DigitNet's ten class probabilities for one 784-pixel image (0..1), computed in the worker. */
export async function classify(model, image) {
  const probs = sn.noGrad(() => model.forward(sn.tensor(image, [1, 784])).softmax(1));
  return Array.from(await probs.data());
}
