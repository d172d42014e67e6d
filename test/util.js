// Browser test helpers: assertions and GC on top of numeric.js (shared with the Node tier).
import { expect } from '@esm-bundle/chai';
import { firstMismatch } from './numeric.js';

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
