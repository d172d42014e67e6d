// Keras initializers: names in both spellings ('glorotUniform', 'glorot_uniform'),
// Keras's { className, config } objects, or sn.initializers.* builders. Fans
// follow Keras: [in, out] for a matrix, times the receptive field for a
// convolution kernel [kh, kw, in, out]. Every draw comes from the worker's
// seeded stream (sn.manualSeed), so per-initializer seeds are refused.

import { sizeOf } from '../shape.js';
import { arange, full, noGrad, where, type Tensor } from '../tensor.js';
import { normal, uniform } from '../nn/init.js';

export type InitializerName =
  | 'zeros' | 'ones' | 'constant' | 'randomNormal' | 'randomUniform' | 'truncatedNormal'
  | 'glorotUniform' | 'glorotNormal' | 'heUniform' | 'heNormal' | 'leCunUniform' | 'leCunNormal'
  | 'orthogonal' | 'identity' | 'varianceScaling';

export interface InitializerConfig {
  value?: number;
  mean?: number;
  stddev?: number;
  minval?: number;
  maxval?: number;
  gain?: number;
  scale?: number;
  mode?: 'fanIn' | 'fanOut' | 'fanAvg' | 'fan_in' | 'fan_out' | 'fan_avg';
  distribution?: 'normal' | 'uniform' | 'truncatedNormal' | 'truncated_normal' | 'untruncated_normal';
  seed?: number;
}

/** What a layer's *Initializer argument takes. */
export type InitializerSpec = string | { className: string; config?: InitializerConfig };

const camel = (s: string) => s.replace(/_([a-z])/g, (_, ch) => ch.toUpperCase());
/** Keras class names (GlorotUniform, LecunNormal) and function names (glorot_uniform, lecun_normal) -> ours. */
const canonical = (s: string) => {
  const c = camel(s);
  const lower = c.charAt(0).toLowerCase() + c.slice(1);
  return lower.replace(/^lecun/i, 'leCun');
};

const VALID = 'zeros, ones, constant, randomNormal, randomUniform, truncatedNormal, glorotUniform, glorotNormal, heUniform, heNormal, leCunUniform, leCunNormal, orthogonal, identity, varianceScaling';

/** Keras's compute_fans. */
function fans(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  const receptive = sizeOf(shape.slice(0, -2));
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** N(0, std^2) cut at two standard deviations, as Keras draws it: out-of-range draws are redrawn. */
function truncatedNormal(shape: readonly number[], mean: number, std: number): Tensor {
  return noGrad(() => {
    let z = normal(shape);
    // Each round redraws what is still outside [-2, 2]; after 6 rounds about 1e-8 of the draws remain, which the clamp pins.
    for (let round = 0; round < 6; round++) z = where(z.abs().le(2), z, normal(shape));
    return z.clamp(-2, 2).mul(std).add(mean);
  });
}

function varianceScaling(shape: readonly number[], scale: number, mode: string, distribution: string): Tensor {
  const [fanIn, fanOut] = fans(shape);
  const m = camel(mode);
  const n = m === 'fanIn' ? fanIn : m === 'fanOut' ? fanOut : m === 'fanAvg' ? (fanIn + fanOut) / 2 : NaN;
  if (Number.isNaN(n)) throw new Error(`varianceScaling: mode must be fanIn, fanOut or fanAvg, got '${mode}'`);
  const variance = scale / Math.max(1, n);
  const d = camel(distribution);
  // Keras's 'normal' is truncated, with the std corrected for the cut (0.8796... is the std of N(0,1) cut at ±2).
  if (d === 'normal' || d === 'truncatedNormal') return truncatedNormal(shape, 0, Math.sqrt(variance) / 0.87962566103423978);
  if (d === 'untruncatedNormal') return normal(shape, 0, Math.sqrt(variance));
  if (d === 'uniform') { const limit = Math.sqrt(3 * variance); return uniform(shape, -limit, limit); }
  throw new Error(`varianceScaling: distribution must be normal, truncatedNormal, untruncatedNormal or uniform, got '${distribution}'`);
}

/**
 * A (semi-)orthogonal matrix, as Keras's Orthogonal: the Q of a QR factorisation of a normal [max, min]
 * matrix with R's diagonal made positive, transposed to fit. Gram-Schmidt (twice, for accuracy) runs
 * as ops in the worker, one row at a time.
 */
function orthogonal(shape: readonly number[], gain: number): Tensor {
  if (shape.length < 2) throw new Error(`orthogonal: the shape must have at least 2 dimensions, got [${shape.join(', ')}]`);
  const rows = sizeOf(shape.slice(0, -1));
  const cols = shape[shape.length - 1];
  const [n, m] = [Math.min(rows, cols), Math.max(rows, cols)];
  return noGrad(() => {
    const a = normal([n, m]);
    let q = full([n, m], 0);
    const index = arange(n).unsqueeze(1);
    for (let j = 0; j < n; j++) {
      let v = a.index(j);
      for (let pass = 0; pass < 2; pass++) v = v.sub(q.matmul(v).matmul(q));
      q = q.add(index.eq(j).float().mul(v.div(v.square().sum().sqrt())));
    }
    // q's rows are orthonormal: rows >= cols wants orthonormal columns.
    const out = rows >= cols ? q.transpose(0, 1) : q;
    return out.mul(gain).reshape([...shape]);
  });
}

/** Draws a tensor of `shape` from a Keras initializer. */
export function initialize(spec: InitializerSpec, shape: readonly number[]): Tensor {
  const { className, config = {} } = typeof spec === 'string' ? { className: spec } : spec;
  if (typeof className !== 'string') throw new Error(`unknown initializer ${JSON.stringify(spec)}; valid: ${VALID}, or { className, config }`);
  if (config.seed !== undefined) throw new Error(`initializer '${className}': per-initializer seeds are not supported; call sn.manualSeed(seed) before building the model instead`);
  const [fanIn, fanOut] = fans(shape);
  switch (canonical(className)) {
    case 'zeros': case 'zero': return full([...shape], 0);
    case 'ones': case 'one': return full([...shape], 1);
    case 'constant': return full([...shape], config.value ?? 0);
    case 'randomNormal': case 'normal': return normal(shape, config.mean ?? 0, config.stddev ?? 0.05);
    case 'randomUniform': case 'uniform': return uniform(shape, config.minval ?? -0.05, config.maxval ?? 0.05);
    case 'truncatedNormal': return truncatedNormal(shape, config.mean ?? 0, config.stddev ?? 0.05);
    case 'glorotUniform': { const l = Math.sqrt(6 / (fanIn + fanOut)); return uniform(shape, -l, l); }
    case 'glorotNormal': return varianceScaling(shape, 1, 'fanAvg', 'normal');
    case 'heUniform': return varianceScaling(shape, 2, 'fanIn', 'uniform');
    case 'heNormal': return varianceScaling(shape, 2, 'fanIn', 'normal');
    case 'leCunUniform': return varianceScaling(shape, 1, 'fanIn', 'uniform');
    case 'leCunNormal': return varianceScaling(shape, 1, 'fanIn', 'normal');
    case 'varianceScaling': return varianceScaling(shape, config.scale ?? 1, config.mode ?? 'fanIn', config.distribution ?? 'normal');
    case 'orthogonal': return orthogonal(shape, config.gain ?? 1);
    case 'identity': {
      if (shape.length !== 2) throw new Error(`identity initializer needs a 2-D shape, got [${shape.join(', ')}]`);
      return noGrad(() => arange(shape[0]).unsqueeze(1).eq(arange(shape[1]).unsqueeze(0)).float().mul(config.gain ?? 1));
    }
  }
  throw new Error(`unknown initializer '${className}'; valid: ${VALID} (snake_case spellings too)`);
}

const builder = (className: InitializerName) => (config: InitializerConfig = {}) => ({ className, config });

/** sn.initializers: TF.js's builders, e.g. sn.initializers.orthogonal({ gain: 2 }). */
export const initializers = {
  zeros: builder('zeros'), ones: builder('ones'), constant: builder('constant'),
  randomNormal: builder('randomNormal'), randomUniform: builder('randomUniform'), truncatedNormal: builder('truncatedNormal'),
  glorotUniform: builder('glorotUniform'), glorotNormal: builder('glorotNormal'),
  heUniform: builder('heUniform'), heNormal: builder('heNormal'),
  leCunUniform: builder('leCunUniform'), leCunNormal: builder('leCunNormal'),
  orthogonal: builder('orthogonal'), identity: builder('identity'), varianceScaling: builder('varianceScaling'),
};
