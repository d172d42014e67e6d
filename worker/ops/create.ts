// Ops that make tensors from nothing: constants, ranges and seeded randoms.

import { ShapeError, type DType } from '../../lib/shape.js';
import { c, f, x } from '../backend/kernel.js';
import { defineOp, meta } from './op.js';

const checkShape = (shape: number[], op: string) => {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`${op}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape;
};

export const full = defineOp<{ shape: number[]; value: number; dtype: DType }>({
  shape: (_ins, { shape, dtype }) => meta(checkShape(shape, 'full'), dtype),
  forward: (ctx, _ins, { shape, value, dtype }) => ctx.full(shape, value, dtype),
});

/** Values start, start + step, ... below end (PyTorch's arange). */
interface RangeAttrs { start: number; end: number; step: number; dtype: DType }
function rangeMeta({ start, end, step, dtype }: RangeAttrs) {
  if (step === 0 || !Number.isFinite(start) || !Number.isFinite(end)) throw new ShapeError(`arange: invalid range (${start}, ${end}, step ${step})`);
  return meta([Math.max(0, Math.ceil((end - start) / step))], dtype);
}

export const arange = defineOp<RangeAttrs>({
  shape: (_ins, at) => rangeMeta(at),
  forward: (ctx, _ins, at) => {
    const { shape, dtype } = rangeMeta(at);
    // Allocating first refuses a range too large for the device before a host array of that size is built.
    const out = ctx.empty(shape, dtype);
    const data = dtype === 'int32' ? new Int32Array(shape[0]) : new Float32Array(shape[0]);
    for (let i = 0; i < shape[0]; i++) data[i] = at.start + i * at.step;
    ctx.backend.write(out.storage, data);
    return out;
  },
});

/** rand (uniform [0,1)), randn (standard normal) and bernoulli masks, keyed by the engine's seed. */
export const random = defineOp<{ shape: number[]; dist: 'uniform' | 'normal' | 'bernoulli'; p?: number; low?: number; high?: number; mean?: number; std?: number }>({
  shape: (_ins, { shape }) => meta(checkShape(shape, 'random'), 'float32'),
  forward: (ctx, _ins, { shape, dist, p = 0.5, low = 0, high = 1, mean = 0, std = 1 }) => {
    const out = ctx.empty(shape);
    ctx.run({ kind: 'rand', dist, size: out.size, p, ...ctx.nextRandKey() }, [], [out]);
    if (dist === 'uniform' && (low !== 0 || high !== 1)) return ctx.map(f('add', f('mul', x(0), c(high - low)), c(low)), [out]);
    if (dist === 'normal' && (mean !== 0 || std !== 1)) return ctx.map(f('add', f('mul', x(0), c(std)), c(mean)), [out]);
    return out;
  },
});
