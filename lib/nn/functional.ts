// sn.nn.functional: the math of the layers and losses as plain functions
// (PyTorch's torch.nn.functional). Modules hold parameters and call these.

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { arange, full, noGrad, record, tensor, Tensor, where } from '../tensor.js';
import { describe, integer } from '../validate.js';
import type { Activation } from '../ops/activations.js';
import { checkOptions, pair, poolParams, type Pair } from './args.js';

export type { Pair };

export type Reduction = 'mean' | 'sum' | 'none';

// ---- layers ------------------------------------------------------------------

/** Constant padding; `pads` holds [before, after] pairs, last dim first, as in torch.nn.functional.pad. */
export const pad = (input: Tensor, pads: number[], value = 0): Tensor => record('pad', [input], { pad: [...pads], value });

/** Activations linear() fuses into its matmul kernel. */
export type LinearActivation = Activation;

/**
 * input [..., in] @ weight.T + bias with weight [out, in], as torch.nn.functional.linear;
 * `activation` (gelu exact) is fused into the same kernel.
 */
export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null, { activation = null }: { activation?: LinearActivation | null } = {}): Tensor {
  if (!(input instanceof Tensor)) throw new TypeError(`linear: input must be a Tensor, got ${describe(input)}`);
  // Checked here so the message names the weight in the caller's [out, in] layout.
  if (weight.ndim !== 2 || input.shape[input.ndim - 1] !== weight.shape[1]) throw new ShapeError(`linear: input ${fmt(input.shape)} does not fit weight ${fmt(weight.shape)} ([out, in])`);
  return record('linear', bias ? [input, weight.T, bias] : [input, weight.T], { activation });
}

export interface Conv2dOptions {
  stride?: Pair;
  /** Zero padding per side, or 'valid' (none) or 'same' (output size = input size; stride 1 only). */
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  /** Channels split into this many groups, each convolved with its own out/groups filters (C for depthwise). */
  groups?: number;
}

/** 2-D convolution (cross-correlation) of input [N, C, H, W] or [C, H, W] with weight [out, C/groups, kH, kW]. */
export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, { stride = 1, padding = 0, dilation = 1, groups = 1 }: Conv2dOptions = {}): Tensor {
  integer(groups, 'conv2d: groups', 1);
  if (input.ndim === 3) return conv2d(input.unsqueeze(0), weight, bias, { stride, padding, dilation, groups }).squeeze(0);
  if (input.ndim !== 4 || weight.ndim !== 4 || input.shape[1] !== weight.shape[1] * groups) {
    throw new ShapeError(`conv2d: input ${fmt(input.shape)} must be [N, C, H, W] with C matching weight ${fmt(weight.shape)} ([out, C/groups, kH, kW]) and groups=${groups}`);
  }
  const [, , kh, kw] = weight.shape;
  const s = pair(stride, 'conv2d: stride');
  const d = pair(dilation, 'conv2d: dilation');
  let pads: number[];
  if (padding === 'same') {
    if (s[0] !== 1 || s[1] !== 1) throw new RangeError("conv2d: padding='same' needs stride 1");
    // PyTorch puts the odd extra pixel after (bottom / right).
    const [th, tw] = [d[0] * (kh - 1), d[1] * (kw - 1)];
    pads = [th >> 1, th - (th >> 1), tw >> 1, tw - (tw >> 1)];
  } else {
    const [ph, pw] = padding === 'valid' ? [0, 0] : pair(padding, 'conv2d: padding', 0);
    pads = [ph, ph, pw, pw];
  }
  return record('conv2d', bias ? [input, weight, bias] : [input, weight], { stride: s, padding: pads, dilation: d, groups });
}

export interface MaxPool2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /** A last, partial window where the stride leaves pixels over (PyTorch's ceil_mode). */
  ceilMode?: boolean;
}

/** Max over 2-D windows of [..., H, W]; padding counts as -Infinity. stride defaults to the kernel size. */
export function maxPool2d(input: Tensor, kernelSize: Pair, opts: MaxPool2dOptions = {}): Tensor {
  const { kernel, stride, pad: p, dilation } = poolParams(kernelSize, opts);
  return record('pool2d', [input], { op: 'max', kernel, stride, padding: [p[0], p[0], p[1], p[1]], dilation, ceilMode: opts.ceilMode ?? false });
}

export interface AvgPool2dOptions extends MaxPool2dOptions {
  /** Padding zeros count in each window's average (PyTorch's default); false averages the real pixels only. */
  countIncludePad?: boolean;
}

/** Average over 2-D windows of [..., H, W] (zero padding); stride defaults to the kernel size. */
export function avgPool2d(input: Tensor, kernelSize: Pair, { countIncludePad = true, ...opts }: AvgPool2dOptions = {}): Tensor {
  if (opts.dilation !== undefined && pair(opts.dilation, 'avgPool2d: dilation').some((d) => d !== 1)) throw new RangeError('avgPool2d: PyTorch has no dilation here');
  const { kernel, stride, pad: p } = poolParams(kernelSize, opts);
  return record('pool2d', [input], { op: 'avg', kernel, stride, padding: [p[0], p[0], p[1], p[1]], dilation: [1, 1], ceilMode: opts.ceilMode ?? false, countIncludePad });
}

// Activations, as torch.nn.functional names them (camelCase).
export const relu = (input: Tensor) => input.relu();
export const sigmoid = (input: Tensor) => input.sigmoid();
export const tanh = (input: Tensor) => input.tanh();
export const softmax = (input: Tensor, dim: number) => input.softmax(dim);
export const logSoftmax = (input: Tensor, dim: number) => input.logSoftmax(dim);
export const leakyRelu = (input: Tensor, negativeSlope = 0.01) => input.leakyRelu(negativeSlope);
/** alpha * (exp(x) - 1) for x <= 0. */
export const elu = (input: Tensor, alpha = 1) => (alpha === 1 ? input.elu() : where(input.gt(0), input, input.exp().sub(1).mul(alpha)));
/** log(1 + exp(beta x)) / beta, linear where beta x > threshold (as PyTorch). */
export function softplus(input: Tensor, beta = 1, threshold = 20): Tensor {
  const bx = beta === 1 ? input : input.mul(beta);
  const soft = beta === 1 ? bx.softplus() : bx.softplus().div(beta);
  return where(bx.gt(threshold), input, soft);
}

/** int32 class indices [...] -> int32 [..., numClasses]. numClasses is required (PyTorch's -1 would need a readback of the max). */
export function oneHot(input: Tensor, numClasses: number): Tensor {
  if (input.dtype !== 'int32') throw new TypeError(`oneHot: expected int32 class indices, got ${input.dtype}`);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`oneHot: pass numClasses, a positive integer (got ${numClasses}); inferring it would need a readback`);
  return arange(numClasses).eq(input.unsqueeze(-1)).int();
}

/** Zeroes each element with probability p and scales the rest by 1/(1-p); identity when not training. */
export function dropout(input: Tensor, p = 0.5, trainingOrOptions: boolean | { training?: boolean } = {}): Tensor {
  const training = typeof trainingOrOptions === 'boolean' ? trainingOrOptions : trainingOrOptions.training ?? true;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return input;
  if (p === 1) return input.mul(0);
  const keep = record('random', [], { shape: [...input.shape], dist: 'bernoulli', p: 1 - p });
  return input.mul(keep.mul(1 / (1 - p)));
}

/** Rows of weight [num, dim] for int32 indices of any shape: [..., dim]. The paddingIdx row gets no gradient. */
export function embedding(input: Tensor, weight: Tensor, { paddingIdx }: { paddingIdx?: number } = {}): Tensor {
  return record('embedding', [weight, input], paddingIdx === undefined ? {} : { paddingIdx });
}

/** GELU, exact (erf) by default or PyTorch's tanh approximation. */
export function gelu(input: Tensor, { approximate = 'none' }: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  if (approximate === 'none') return input.gelu();
  if (approximate === 'tanh') return record('geluTanh', [input]);
  throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got '${approximate}'`);
}

/** (x - mean) / sqrt(var + eps) over `dims`, with the biased variance; also returns the statistics. */
function standardize(x: Tensor, dims: number[], eps: number) {
  const mean = x.mean(dims, true);
  const centered = x.sub(mean);
  const variance = centered.square().mean(dims, true);
  return { y: centered.div(variance.add(eps).sqrt()), mean, variance };
}

/** Normalizes over the trailing normalizedShape dims, then applies the optional elementwise weight and bias. */
export function layerNorm(input: Tensor, normalizedShape: number[], weight: Tensor | null = null, bias: Tensor | null = null, { eps = 1e-5 }: { eps?: number } = {}): Tensor {
  const k = normalizedShape.length;
  if (k === 0 || k > input.ndim || fmt(input.shape.slice(-k)) !== fmt(normalizedShape)) {
    throw new ShapeError(`layerNorm: input ${fmt(input.shape)} does not end with normalizedShape ${fmt(normalizedShape)}`);
  }
  let { y } = standardize(input, normalizedShape.map((_, i) => i - k), eps);
  if (weight) y = y.mul(weight);
  return bias ? y.add(bias) : y;
}

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the batch statistic in the running update; a scalar tensor gives a value computed in the worker. */
  momentum?: number | Tensor;
  eps?: number;
}

/**
 * Batch normalization of [N, C, ...] over every dim but 1. Training uses the
 * batch statistics (biased variance) and, when running stats are given,
 * updates them in place with the unbiased variance; otherwise the running
 * stats normalize.
 */
export function batchNorm(input: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null = null, bias: Tensor | null = null,
  { training = false, momentum = 0.1, eps = 1e-5 }: BatchNormOptions = {}): Tensor {
  if (input.ndim < 2) throw new ShapeError(`batchNorm: expected an input [N, C, ...], got ${fmt(input.shape)}`);
  const ch = input.shape[1];
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && fmt(t.shape) !== fmt([ch])) throw new ShapeError(`batchNorm: ${name} ${fmt(t.shape)} does not match the ${ch} channels of input ${fmt(input.shape)}`);
  }
  // Per-channel [C] tensors broadcast against [N, C, ...].
  const perChannel = (t: Tensor) => t.reshape(ch, ...input.shape.slice(2).map(() => 1));
  let y: Tensor;
  if (training || !runningMean || !runningVar) {
    const n = input.size / ch;
    if (training && n <= 1) throw new ShapeError(`batchNorm: expected more than 1 value per channel when training, got input ${fmt(input.shape)}`);
    const dims = input.shape.map((_, i) => i).filter((i) => i !== 1);
    const stats = standardize(input, dims, eps);
    y = stats.y;
    if (training && runningMean && runningVar) {
      noGrad(() => {
        const update = (running: Tensor, batch: Tensor) => assign(running, running.add(batch.reshape(ch).sub(running).mul(momentum)));
        update(runningMean, stats.mean);
        update(runningVar, stats.variance.mul(n / (n - 1)));
      });
    }
  } else {
    y = input.sub(perChannel(runningMean)).div(perChannel(runningVar).add(eps).sqrt());
  }
  if (weight) y = y.mul(perChannel(weight));
  return bias ? y.add(perChannel(bias)) : y;
}

/** Copies src into target's storage in place (the target keeps its id). */
function assign(target: Tensor, src: Tensor) {
  runtime().enqueue(['assign', target.id, src.id]);
}

// ---- losses ------------------------------------------------------------------

function reduce(loss: Tensor, reduction: Reduction): Tensor {
  switch (reduction) {
    case 'mean': return loss.mean();
    case 'sum': return loss.sum();
    case 'none': return loss;
    default: throw new RangeError(`reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
}

interface ReductionOption { reduction?: Reduction }

const warned = new Set<string>();

/** PyTorch's warning when a regression target broadcasts against the input; once per loss and pair of shapes. */
function warnIfBroadcast(op: string, input: Tensor, target: Tensor) {
  if (fmt(input.shape) === fmt(target.shape)) return;
  const key = `${op} ${fmt(input.shape)} ${fmt(target.shape)}`;
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(`${op}: using a target size (${fmt(target.shape)}) that is different to the input size (${fmt(input.shape)}). This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.`);
}

export function mseLoss(input: Tensor, target: Tensor, { reduction = 'mean' }: ReductionOption = {}) {
  warnIfBroadcast('mseLoss', input, target);
  return reduce(input.sub(target).square(), reduction);
}

export function l1Loss(input: Tensor, target: Tensor, { reduction = 'mean' }: ReductionOption = {}) {
  warnIfBroadcast('l1Loss', input, target);
  return reduce(input.sub(target).abs(), reduction);
}

/** Quadratic within delta of the target, linear (slope delta) beyond. */
export function huberLoss(input: Tensor, target: Tensor, { delta = 1, reduction = 'mean' }: ReductionOption & { delta?: number } = {}) {
  warnIfBroadcast('huberLoss', input, target);
  const d = input.sub(target);
  const ad = d.abs();
  return reduce(where(ad.lt(delta), d.square().mul(0.5), ad.sub(0.5 * delta).mul(delta)), reduction);
}

/** Binary cross-entropy of probabilities (each log clamped at -100, as PyTorch does). */
export function binaryCrossEntropy(input: Tensor, target: Tensor, { weight = null, reduction = 'mean' }: ReductionOption & { weight?: Tensor | null } = {}) {
  const loss = record('binaryCrossEntropy', [input, target]);
  return reduce(weight ? loss.mul(weight) : loss, reduction);
}

/** Binary cross-entropy of logits in the stable form softplus(x) - t x; posWeight weighs the positive term per class. */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor,
  { weight = null, posWeight = null, reduction = 'mean' }: ReductionOption & { weight?: Tensor | null; posWeight?: Tensor | null } = {}) {
  if (fmt(input.shape) !== fmt(target.shape)) throw new ShapeError(`binaryCrossEntropyWithLogits: target ${fmt(target.shape)} must have the input's shape ${fmt(input.shape)}`);
  // -[pw t log s(x) + (1 - t) log(1 - s(x))] = (1 - t) x + (1 + (pw - 1) t) softplus(-x)
  const loss = posWeight
    ? input.mul(target.rsub(1)).add(posWeight.sub(1).mul(target).add(1).mul(input.neg().softplus()))
    : input.softplus().sub(input.mul(target));
  return reduce(weight ? loss.mul(weight) : loss, reduction);
}

interface ClassOptions extends ReductionOption {
  weight?: Tensor | null;
  ignoreIndex?: number;
}

/** Unbatched [C] inputs (and [] targets) as a batch of one. */
function batched(input: Tensor, target: Tensor, reduction: Reduction, fn: (i: Tensor, t: Tensor) => Tensor): Tensor {
  if (input.ndim !== 1) return fn(input, target);
  const out = fn(input.unsqueeze(0), target.unsqueeze(0));
  return reduction === 'none' ? out.squeeze(0) : out;
}

type ClassLoss = 'nllLoss' | 'crossEntropy';

/** The class targets with ignored entries replaced by 0 (so they index safely), and the 0/1 mask of kept ones. */
function classTargets(input: Tensor, target: Tensor, ignoreIndex: number, op: ClassLoss) {
  const want = [input.shape[0], ...input.shape.slice(2)];
  if (target.dtype !== 'int32' || fmt(target.shape) !== fmt(want)) {
    throw new ShapeError(`${op}: for input ${fmt(input.shape)} the target must be int32 class indices of shape ${fmt(want)}, got ${target.dtype} ${fmt(target.shape)}`);
  }
  const keep = target.ne(ignoreIndex);
  return { safe: where(keep, target, full([], 0, { dtype: 'int32' })), keep };
}

/**
 * -w[t] * logp[t] per target (0 where ignored), reduced; 'mean' divides by the
 * kept targets' total weight. Also returns those per-target weights. An
 * out-of-range target is reported as the loss's, not as the gather's.
 */
function weightedNll(logp: Tensor, safe: Tensor, keep: Tensor, weight: Tensor | null, reduction: Reduction, op: ClassLoss) {
  const w = weight ? record('gather', [weight, safe.flatten()], { dim: 0, targetsOf: op }).reshape([...safe.shape]).mul(keep) : keep;
  const loss = record('gather', [logp, safe.unsqueeze(1)], { dim: 1, targetsOf: op }).squeeze(1).mul(w).neg();
  return { loss: reduction === 'mean' ? loss.sum().div(w.sum()) : reduce(loss, reduction), w };
}

/** Negative log-likelihood of log-probabilities [N, C, ...] at int32 targets [N, ...]. */
export function nllLoss(input: Tensor, target: Tensor, { weight = null, ignoreIndex = -100, reduction = 'mean' }: ClassOptions = {}): Tensor {
  return batched(input, target, reduction, (x, t) => {
    const { safe, keep } = classTargets(x, t, ignoreIndex, 'nllLoss');
    return weightedNll(x, safe, keep, weight, reduction, 'nllLoss').loss;
  });
}

/**
 * log_softmax over dim 1 then NLL, for int32 class targets [N, ...], or for
 * float class probabilities shaped like the input. Label smoothing mixes in
 * the uniform distribution exactly as PyTorch 1.13 does (ignored targets
 * excluded from both terms).
 */
export function crossEntropy(input: Tensor, target: Tensor, { weight = null, ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean' }: ClassOptions & { labelSmoothing?: number } = {}): Tensor {
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  return batched(input, target, reduction, (x, t) => {
    // Scores [N, C] and targets that need no gradient: one fused kernel each way.
    if (x.ndim === 2 && !t.requiresGrad && (t.ndim === 1 || t.dtype === 'float32')) {
      return record('softmaxCrossEntropy', weight ? [x, t, weight] : [x, t], { ignoreIndex, labelSmoothing, reduction, loss: 'crossEntropy' });
    }
    const classes = x.shape[1];
    const logp = x.logSoftmax(1);
    // The class weights broadcast against [N, C, ...].
    const w = weight?.reshape(classes, ...x.shape.slice(2).map(() => 1));
    if (t.dtype === 'float32') {
      if (fmt(t.shape) !== fmt(x.shape)) throw new ShapeError(`crossEntropy: probability targets ${fmt(t.shape)} must have the input's shape ${fmt(x.shape)}`);
      const p = labelSmoothing ? t.mul(1 - labelSmoothing).add(labelSmoothing / classes) : t;
      const terms = logp.mul(p);
      // 'mean' divides by the number of samples, whatever the weights.
      return reduce((w ? terms.mul(w) : terms).sum(1).neg(), reduction);
    }
    const { safe, keep } = classTargets(x, t, ignoreIndex, 'crossEntropy');
    const nll = weightedNll(logp, safe, keep, weight, reduction, 'crossEntropy');
    if (!labelSmoothing) return nll.loss;
    const smooth = where(keep, (w ? logp.mul(w) : logp).sum(1).neg(), 0);
    const smoothed = reduction === 'mean' ? smooth.sum().div(nll.w.sum()) : reduce(smooth, reduction);
    return nll.loss.mul(1 - labelSmoothing).add(smoothed.mul(labelSmoothing / classes));
  });
}

// ---- attention -----------------------------------------------------------

/** The shape of nested arrays (masks given as booleans). */
export const nestedShape = (a: unknown): number[] => (Array.isArray(a) ? [a.length, ...nestedShape(a[0])] : []);

/** Where a causal block is added to composed scores: 0 where key j <= query i, -Infinity after. */
function causalMask(l: number, s: number): Tensor {
  const data = new Float32Array(l * s);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < s; j++) data[i * s + j] = -Infinity;
  return tensor(data, [l, s]);
}

export interface AttendOptions {
  scale: number;
  causal?: boolean;
  /** Dropout on the probabilities (applied as given: callers pass 0 outside training). */
  dropout?: number;
  /** Also return the probabilities [N, H, L, S]. */
  needProbs?: boolean;
}

/**
 * softmax(q kᵀ · scale + mask) v over heads: q [N, H, L, D], k [N, H, S, D], v [N, H, S, DV], an
 * additive mask broadcastable to [N, H, L, S]; returns [N, H, L, DV] and, when asked, the probabilities
 * before and after dropout (Keras returns the first, PyTorch the second).
 * One op (fused or composed in the engine, as sn.init's `attention` says) unless the probabilities
 * are needed: then matmul + softmax here, and under attention 'fused' the op still gives the output.
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, { scale, causal = false, dropout: p = 0, needProbs = false }: AttendOptions): [Tensor, Tensor | null, Tensor | null] {
  const fused = () => record('attention', mask ? [q, k, v, mask] : [q, k, v], { scale, causal });
  if (!needProbs && !p) return [fused(), null, null];
  let scores = q.matmul(k.transpose(2, 3)).mul(scale);
  if (mask) scores = scores.add(mask);
  if (causal) scores = scores.add(causalMask(q.shape[2], k.shape[2]));
  const probs = scores.softmax(-1);
  if (!p && runtime().attention === 'fused') return [fused(), probs, probs];
  const dropped = dropout(probs, p, { training: true });
  return [dropped.matmul(v), probs, dropped];
}

export interface ScaledDotProductAttentionOptions {
  /** Broadcastable to [..., L, S]: a float mask is added to the scores; an int32 / boolean one is PyTorch 2's bool mask, true (non-zero) = may attend. */
  attnMask?: Tensor | boolean[][] | null;
  /** Dropout on the attention probabilities, always applied when > 0 (as PyTorch: pass 0 outside training). */
  dropoutP?: number;
  /** Query i attends keys j <= i only; not with attnMask. */
  isCausal?: boolean;
  /** Default 1 / sqrt(query's last dim). */
  scale?: number | null;
}

/**
 * PyTorch 2's F.scaled_dot_product_attention: softmax(q kᵀ · scale + mask) v for query [..., L, E],
 * key [..., S, E], value [..., S, Ev] with 3 or 4 dims ([batch, L, E] or [batch, heads, L, E]).
 */
export function scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options: ScaledDotProductAttentionOptions = {}): Tensor {
  checkOptions('scaledDotProductAttention', options, ['attnMask', 'dropoutP', 'isCausal', 'scale'], 3, arguments.length);
  const { attnMask = null, dropoutP = 0, isCausal = false, scale = null } = options;
  const r = query.ndim;
  if ((r !== 3 && r !== 4) || key.ndim !== r || value.ndim !== r) {
    throw new ShapeError(`scaledDotProductAttention: query, key and value must all be [batch, L, E] or all [batch, heads, L, E], got query ${fmt(query.shape)}, key ${fmt(key.shape)}, value ${fmt(value.shape)}`);
  }
  if (!(dropoutP >= 0 && dropoutP < 1)) throw new RangeError(`scaledDotProductAttention: dropoutP must be in [0, 1), got ${dropoutP}`);
  if (isCausal && attnMask != null) throw new Error('scaledDotProductAttention: pass attnMask or isCausal, not both (add the causal block to the mask)');
  const four = (t: Tensor) => (r === 3 ? t.unsqueeze(0) : t);
  let mask: Tensor | null = null;
  if (attnMask != null) {
    const m = attnMask instanceof Tensor ? attnMask : tensor(attnMask.flat(Infinity).map(Number) as number[], nestedShape(attnMask), { dtype: 'int32' });
    if (m.ndim > 4) throw new ShapeError(`scaledDotProductAttention: attnMask ${fmt(m.shape)} has more than 4 dims`);
    const additive = m.dtype === 'float32' ? m : where(m.ne(0), 0, -Infinity);
    mask = additive.reshape(...new Array(4 - m.ndim).fill(1), ...m.shape);
  }
  const [out] = attend(four(query), four(key), four(value), mask, { scale: scale ?? 1 / Math.sqrt(query.shape[r - 1]), causal: isCausal, dropout: dropoutP });
  return r === 3 ? out.squeeze(0) : out;
}
