// Specs of matmul and linear (implemented in worker/ops/matmul.ts).

import type { Activation } from './activations.js';
import { fmt, matmulShape, ShapeError } from '../shape.js';
import { defineSpec, meta } from './spec.js';

/** matmul with PyTorch's rules: 1-D operands, batched 3-D and more, batch dims broadcast. */
export const matmul = defineSpec<{}>({
  shape: ([a, b]) => meta(matmulShape(a.shape, b.shape), 'float32'),
});

/** act(x @ w + b): x [..., in]; w [in, out] in any layout; b [out], optional. */
export const linear = defineSpec<{ activation?: Activation | null }>({
  shape: ([x, w, b]) => {
    if (x.shape.length < 1 || w.shape.length !== 2 || x.shape[x.shape.length - 1] !== w.shape[0] || (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[1]))) {
      throw new ShapeError(`linear: input ${fmt(x.shape)} and weight ${fmt(w.shape)} ([in, out])${b ? ` with bias ${fmt(b.shape)}` : ''} do not fit`);
    }
    return meta([...x.shape.slice(0, -1), w.shape[1]], 'float32');
  },
});
