// Ops that make tensors from nothing: constants, ranges and seeded randoms.

import * as spec from '../../lib/ops/create.js';
import { c, f, x } from '../backend/kernel.js';
import { implement } from './op.js';

export const full = implement(spec.full, {
  forward: (ctx, _ins, { shape, value, dtype }) => ctx.full(shape, value, dtype),
});

export const arange = implement(spec.arange, {
  forward: (ctx, _ins, at) => {
    const { shape, dtype } = spec.arange.shape([], at);
    // Allocating first refuses a range too large for the device before a host array of that size is built.
    const out = ctx.empty(shape, dtype);
    const data = dtype === 'int32' ? new Int32Array(shape[0]) : new Float32Array(shape[0]);
    for (let i = 0; i < shape[0]; i++) data[i] = at.start + i * at.step;
    ctx.backend.write(out.storage, data);
    return out;
  },
});

export const random = implement(spec.random, {
  forward: (ctx, _ins, { shape, dist, p = 0.5, low = 0, high = 1, mean = 0, std = 1 }) => {
    const out = ctx.empty(shape);
    ctx.run({ kind: 'rand', dist, size: out.size, p, ...ctx.nextRandKey() }, [], [out]);
    if (dist === 'uniform' && (low !== 0 || high !== 1)) return ctx.map(f('add', f('mul', x(0), c(high - low)), c(low)), [out]);
    if (dist === 'normal' && (mean !== 0 || std !== 1)) return ctx.map(f('add', f('mul', x(0), c(std)), c(mean)), [out]);
    return out;
  },
});
