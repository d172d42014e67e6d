// Module worker for the "kill mid-save" test in checkpoint-store.test.js.
// On a message { dbName, name, chunkBytes, gen } it builds the content of
// generation `gen`, posts { type: 'saving' }, saves it, posts { type: 'saved', ms }.
// The page terminates it at a random moment; nothing here cleans up on purpose.
// Imported by the page too (for `content`): the handler is installed only in a worker.
import { CheckpointStore } from '../build/test/checkpoint-store.js';

function fill(n, seed) {
  const out = new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** Deterministic content of generation `gen`; blob sizes and even the set of blobs vary. */
export function content(gen) {
  const blobs = {
    weights: fill(300_000 + (gen % 7) * 10_000, gen * 3 + 1),
    bias: fill(70_001, gen * 3 + 2),
    empty: new Uint8Array(0),
  };
  if (gen % 2) blobs.extra = fill(40_000 + gen, gen * 3 + 3);
  return { meta: { gen, note: `generation ${gen}`, shapes: { weights: [blobs.weights.length] } }, blobs };
}

const inWorker = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;
if (inWorker) {
  self.onmessage = async (ev) => {
    const { dbName, name, chunkBytes, gen } = ev.data;
    const store = new CheckpointStore({ dbName, chunkBytes });
    const { meta, blobs } = content(gen);
    self.postMessage({ type: 'saving' });
    const t0 = performance.now();
    try {
      await store.save(name, 'kill-test', meta, blobs);
      self.postMessage({ type: 'saved', ms: performance.now() - t0 });
    } catch (e) {
      self.postMessage({ type: 'error', message: String(e && e.message) });
    }
  };
}
