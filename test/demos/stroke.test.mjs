// The page-side preprocessing that turns canvas ink into an MNIST-like 28x28 image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toMnist } from '../../demos/stroke.js';

/** A w x h canvas of ink with a filled rectangle [x0, x1) x [y0, y1). */
function rect(w, h, x0, y0, x1, y1) {
  const ink = new Uint8ClampedArray(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) ink[y * w + x] = 255;
  return ink;
}

const box = (img) => {
  const on = [...img.keys()].filter((i) => img[i] > 0);
  const xs = on.map((i) => i % 28), ys = on.map((i) => Math.floor(i / 28));
  return { w: Math.max(...xs) - Math.min(...xs) + 1, h: Math.max(...ys) - Math.min(...ys) + 1 };
};
const centre = (img) => {
  let m = 0, x = 0, y = 0;
  img.forEach((v, i) => ((m += v), (x += v * ((i % 28) + 0.5)), (y += v * (Math.floor(i / 28) + 0.5))));
  return [x / m, y / m];
};

test('no ink gives null', () => {
  assert.equal(toMnist(new Uint8ClampedArray(37 * 53), 37, 53), null);
});

test('a tall stroke anywhere on an odd-sized canvas becomes 20 pixels tall, aspect kept, centred by mass', () => {
  // 30 wide, 150 tall, near the top-left corner of a 213 x 197 canvas.
  const img = toMnist(rect(213, 197, 5, 3, 35, 153), 213, 197);
  assert.equal(img.length, 784);
  assert.deepEqual(box(img), { w: 4, h: 20 });
  const [cx, cy] = centre(img);
  assert.ok(Math.abs(cx - 14) <= 0.5 && Math.abs(cy - 14) <= 0.5, `centre of mass ${cx}, ${cy}`);
  assert.ok(img.every((v) => v >= 0 && v <= 1));
  assert.equal(Math.max(...img), 1);
});

test('centre of mass, not the box, is centred: a heavy left side shifts the image right', () => {
  // An L: a thick vertical bar and a thin foot.
  const ink = rect(100, 100, 10, 10, 40, 90);
  for (let y = 85; y < 90; y++) for (let x = 40; x < 90; x++) ink[y * 100 + x] = 255;
  const img = toMnist(ink, 100, 100);
  const cols = Array.from({ length: 28 }, (_, x) => Array.from({ length: 28 }, (_, y) => img[y * 28 + x]).some((v) => v > 0));
  const left = cols.indexOf(true), right = 27 - cols.lastIndexOf(true);
  assert.ok(left > right, `mass-centred, not box-centred: ${left} columns free on the left, ${right} on the right`);
  const [cx, cy] = centre(img);
  assert.ok(Math.abs(cx - 14) <= 0.5 && Math.abs(cy - 14) <= 0.5, `centre of mass ${cx}, ${cy}`);
});

test('a small stroke is scaled up to the 20-pixel box too', () => {
  const img = toMnist(rect(280, 280, 100, 100, 103, 107), 280, 280);
  assert.deepEqual(box(img), { w: 9, h: 20 });
});
