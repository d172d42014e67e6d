// The page's shuffling stream. sn.manualSeed reseeds it (next to the
// worker's stream for randn and dropout); every shuffled pass over a
// DataLoader draws one seed from it, so a seeded program shuffles the same
// way each run, while successive epochs get different orders.

let state = 0;

/** mulberry32: one 32-bit step of the stream. */
function next(s: { a: number }): number {
  s.a = (s.a + 0x6d2b79f5) >>> 0;
  let t = s.a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export function seedShuffling(seed: number) {
  state = seed >>> 0;
}

/** The next seed from the stream (a shuffled pass, or a Keras fit, draws one). */
export function nextSeed(): number {
  const stream = { a: state };
  const seed = next(stream);
  state = stream.a;
  return seed;
}

/** The permutation of 0..n-1 (Fisher-Yates) that `seed` gives; shared with the worker's fit loop. */
export function permutation(n: number, seed: number): Int32Array {
  const gen = { a: seed >>> 0 };
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((next(gen) / 4294967296) * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** A random permutation of 0..n-1, drawing the next seed from the stream. */
export const randperm = (n: number): Int32Array => permutation(n, nextSeed());
