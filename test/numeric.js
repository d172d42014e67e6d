// Test helpers without assertions, shared by the browser and Node tiers:
// a seeded PRNG, random inputs, sizes and closeness.

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random values for a shape: kind 'normal' (default), 'positive', 'away' (|x| >= 0.2) or 'int:N' (0..N-1). */
export function randomData(rng, size, kind = 'normal') {
  const out = kind.startsWith('int') ? new Int32Array(size) : new Float32Array(size);
  const n = kind.startsWith('int') ? Number(kind.split(':')[1]) : 0;
  for (let i = 0; i < size; i++) {
    const u = rng();
    if (n) out[i] = Math.floor(u * n);
    else if (kind === 'positive') out[i] = 0.2 + 2 * u;
    else if (kind === 'away') out[i] = (u < 0.5 ? -1 : 1) * (0.2 + 1.5 * rng());
    else out[i] = (u - 0.5) * 4;
  }
  return out;
}

export const sizeOf = (shape) => shape.reduce((a, b) => a * b, 1);

/** Where two arrays disagree beyond atol + rtol * |expected|: a message naming the first bad index, or null. */
export function firstMismatch(actual, expected, { atol = 1e-5, rtol = 1e-4, label = '' } = {}) {
  if (actual.length !== expected.length) return `${label}: length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) return `${label}: index ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`;
  }
  return null;
}

/** A small classification problem: 6 features, class = argmax of the first 3 (one-hot y). */
export function blobData(n, seed = 1) {
  const rng = mulberry32(seed);
  const x = randomData(rng, n * 6);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 3; c++) if (x[i * 6 + c] > x[i * 6 + best]) best = c;
    y[i * 3 + best] = 1;
  }
  return { x, y };
}
