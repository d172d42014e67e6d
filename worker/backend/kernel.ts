// Kernel descriptions: plain data that both backends execute with identical
// semantics. The CPU backend interprets them; the WebGPU backend generates
// WGSL from them. Ops (worker/ops) lower to these few families.

import type { Activation } from '../../lib/ops/activations.js';
import type { DType } from '../../lib/shape.js';

/** A strided view into a storage: element (i0, i1, ...) lives at offset + sum(i_k * strides[k]). */
export interface View {
  shape: number[];
  strides: number[];
  offset: number;
}

/** Elementwise expression tree over input views. */
export type Expr = { in: number } | { c: number } | { op: string; args: Expr[] };

/** Expression builders: x(0) is input 0, c(2) a constant, f('mul', a, b) an elementwise call. */
export const x = (i: number): Expr => ({ in: i });
export const c = (v: number): Expr => ({ c: v });
export const f = (op: string, ...args: Expr[]): Expr => ({ op, args });

const mul = (a: Expr, b: Expr) => f('mul', a, b);
/** The gradient split evenly between tied operands of maximum/minimum, as PyTorch does. */
const tieSplit = (cmp: string, a: Expr, b: Expr) => f('add', f(cmp, a, b), mul(c(0.5), f('eq', a, b)));
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * The gradient reaching each argument of one elementwise call y = fn(args)
 * when g reaches y: g times the partial derivative, or null where none
 * flows. Backward rules of elementwise ops are derived from these
 * (worker/ops/derive.ts).
 */
export type Partials = (g: Expr, args: Expr[], y: Expr) => (Expr | null)[];

/**
 * Every elementwise function once, for both backends. `wgsl` builds an
 * expression from argument expressions (f32 semantics unless noted), `js`
 * is the CPU twin; both compute in float32 (the CPU result is fround-ed).
 * `d` gives its partials; functions without one are not differentiable.
 */
export const ELEMENTWISE: Record<string, { wgsl: (...a: string[]) => string; js: (...a: number[]) => number; int?: boolean; wgslFloat?: (...a: string[]) => string; d?: Partials }> = {
  id: { wgsl: (a) => a, js: (a) => a, int: true, d: (g) => [g] },
  neg: { wgsl: (a) => `(-${a})`, js: (a) => -a, int: true, d: (g) => [f('neg', g)] },
  abs: { wgsl: (a) => `abs(${a})`, js: Math.abs, int: true, d: (g, [a]) => [mul(g, f('sign', a))] },
  sign: { wgsl: (a) => `sign(${a})`, js: Math.sign, int: true },
  exp: { wgsl: (a) => `exp(${a})`, js: Math.exp, d: (g, _, y) => [mul(g, y)] },
  log: { wgsl: (a) => `sn_log(${a})`, js: Math.log, d: (g, [a]) => [f('div', g, a)] },
  sqrt: { wgsl: (a) => `sn_sqrt(${a})`, js: Math.sqrt, d: (g, _, y) => [f('div', g, mul(c(2), y))] },
  rsqrt: { wgsl: (a) => `sn_rsqrt(${a})`, js: (a) => 1 / Math.sqrt(a), d: (g, [a], y) => [mul(g, mul(c(-0.5), f('div', y, a)))] },
  recip: { wgsl: (a) => `(1.0 / ${a})`, js: (a) => 1 / a, d: (g, _, y) => [f('neg', mul(g, mul(y, y)))] },
  sin: { wgsl: (a) => `sn_sin(${a})`, js: Math.sin, d: (g, [a]) => [mul(g, f('cos', a))] },
  cos: { wgsl: (a) => `sn_cos(${a})`, js: Math.cos, d: (g, [a]) => [f('neg', mul(g, f('sin', a)))] },
  // relu, maximum and minimum propagate NaN like PyTorch (wgslFloat: the f32 form when it differs from the i32 one).
  relu: { wgsl: (a) => `sn_relu(${a})`, js: (a) => (a <= 0 ? 0 : a), d: (g, [a]) => [mul(g, f('gt', a, c(0)))] },
  sigmoid: { wgsl: (a) => `sn_sigmoid(${a})`, js: (a) => (a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a))), d: (g, _, y) => [mul(g, mul(y, f('sub', c(1), y)))] },
  tanh: { wgsl: (a) => `sn_tanh(${a})`, js: Math.tanh, d: (g, _, y) => [mul(g, f('sub', c(1), mul(y, y)))] },
  erf: { wgsl: (a) => `sn_erf(${a})`, js: erf, d: (g, [a]) => [mul(g, mul(c(TWO_OVER_SQRT_PI), f('exp', f('neg', mul(a, a)))))] },
  softplus: { wgsl: (a) => `sn_softplus(${a})`, js: (a) => Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))), d: (g, [a]) => [mul(g, f('sigmoid', a))] },
  /** 1 for finite values, 0 for NaN and infinities (by the bits: see sn_isnan). */
  isfinite: { wgsl: (a) => `select(0.0, 1.0, (bitcast<u32>(f32(${a})) & 0x7fffffffu) < 0x7f800000u)`, js: (a) => +Number.isFinite(a) },
  floor: { wgsl: (a) => `floor(${a})`, js: Math.floor },
  add: { wgsl: (a, b) => `(${a} + ${b})`, js: (a, b) => a + b, int: true, d: (g) => [g, g] },
  sub: { wgsl: (a, b) => `(${a} - ${b})`, js: (a, b) => a - b, int: true, d: (g) => [g, f('neg', g)] },
  mul: { wgsl: (a, b) => `(${a} * ${b})`, js: (a, b) => a * b, int: true, d: (g, [a, b]) => [mul(g, b), mul(g, a)] },
  div: { wgsl: (a, b) => `(${a} / ${b})`, js: (a, b) => a / b, d: (g, [, b], y) => [f('div', g, b), f('neg', f('div', mul(g, y), b))] },
  pow: {
    wgsl: (a, b) => `sn_pow(${a}, ${b})`, js: Math.pow,
    // d/db a^b = a^b ln a; zero where a == 0 (PyTorch's convention for 0^b).
    d: (g, [a, b], y) => [mul(g, mul(b, f('pow', a, f('sub', b, c(1))))), mul(g, f('where', f('eq', a, c(0)), c(0), mul(y, f('log', a))))],
  },
  maximum: { wgsl: (a, b) => `max(${a}, ${b})`, wgslFloat: (a, b) => `sn_max(${a}, ${b})`, js: Math.max, int: true, d: (g, [a, b]) => [mul(g, tieSplit('gt', a, b)), mul(g, tieSplit('lt', a, b))] },
  minimum: { wgsl: (a, b) => `min(${a}, ${b})`, wgslFloat: (a, b) => `sn_min(${a}, ${b})`, js: Math.min, int: true, d: (g, [a, b]) => [mul(g, tieSplit('lt', a, b)), mul(g, tieSplit('gt', a, b))] },
  // Comparisons yield 1 or 0 in the output dtype.
  eq: { wgsl: (a, b) => `select(0.0, 1.0, ${a} == ${b})`, js: (a, b) => +(a === b) },
  ne: { wgsl: (a, b) => `select(0.0, 1.0, ${a} != ${b})`, js: (a, b) => +(a !== b) },
  gt: { wgsl: (a, b) => `select(0.0, 1.0, ${a} > ${b})`, js: (a, b) => +(a > b) },
  ge: { wgsl: (a, b) => `select(0.0, 1.0, ${a} >= ${b})`, js: (a, b) => +(a >= b) },
  lt: { wgsl: (a, b) => `select(0.0, 1.0, ${a} < ${b})`, js: (a, b) => +(a < b) },
  le: { wgsl: (a, b) => `select(0.0, 1.0, ${a} <= ${b})`, js: (a, b) => +(a <= b) },
  /** where(cond, a, b): cond != 0 picks a. The branch not taken gets an exact 0 (no 0 * inf). */
  where: { wgsl: (c, a, b) => `select(${b}, ${a}, ${c} != 0)`, js: (c, a, b) => (c !== 0 ? a : b), d: (g, [cond]) => [null, f('where', cond, g, c(0)), f('where', cond, c(0), g)] },
};

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); the WGSL twin lives in shaders/math.wgsl.
export function erf(x: number): number {
  const s = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

/** out_j[view_j] = exprs[j](inputs) for every index of `shape`. Outputs may alias inputs elementwise (in-place updates). */
export interface MapKernel {
  kind: 'map';
  shape: number[];
  exprs: Expr[];
  inputs: View[];
  inDtypes: DType[];
  outputs: View[];
  /** Computation and output dtype. int32 maps must only use ops marked `int`. */
  dtype: DType;
}

/**
 * One elementwise program over many tensors in one launch (PyTorch's multi-tensor `foreach`
 * kernels; optimizer steps): segment after segment, each element of a segment evaluates
 * `exprs` over its input slots and stores result j to its output slot j. Every segment binds
 * its own storages at its own places, walked as a [rows, cols] matrix in row-major order
 * (a scalar slot has strides [0, 0]). Outputs may alias inputs elementwise (in-place
 * updates). float32 only.
 */
export interface MultiMapKernel {
  kind: 'multimap';
  exprs: Expr[];
  segments: Segment[];
}

/** One tensor group of a MultiMapKernel: rows * cols elements of every slot. */
export interface Segment {
  rows: number;
  cols: number;
  inputs: Place[];
  outputs: Place[];
}

/** Where a slot lives in one segment: an index into the launch's input (or output) storages, an element offset and [row, col] strides. */
export interface Place {
  storage: number;
  offset: number;
  strides: [number, number];
}

/** A segment as the map kernel over its storages that computes it (the CPU backends run segments so). */
export function segmentMap(k: MultiMapKernel, s: Segment): MapKernel {
  const view = (p: Place): View => ({ shape: [s.rows, s.cols], strides: p.strides, offset: p.offset });
  return {
    kind: 'map', shape: [s.rows, s.cols], exprs: k.exprs, dtype: 'float32', inDtypes: s.inputs.map(() => 'float32'),
    inputs: s.inputs.map(view), outputs: s.outputs.map(view),
  };
}

/**
 * An elementwise expression a kernel reads its input through (fused maps): the input's
 * elements, in order, are those of `shape` in row-major order, each expr over the views
 * (all shaped `shape`) at that index. The kernel's storages are then the views' storages,
 * in order, in place of its one input.
 */
export interface Prologue {
  shape: number[];
  expr: Expr;
  inputs: View[];
  inDtypes: DType[];
}

/** Reduces the middle axis of a contiguous [outer, n, inner] input (or a prologue over views of that shape); output [outer, inner]. */
export interface ReduceKernel {
  kind: 'reduce';
  op: 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
  outer: number;
  n: number;
  inner: number;
  /** Multiplies sums (mean = sum with scale 1/n). */
  scale: number;
  dtype: DType;
  prologue?: Prologue;
}

/** The map kernel that computes a prologue into a contiguous buffer (the CPU backends run it before the kernel proper). */
export const prologueMap = ({ shape, expr, inputs, inDtypes }: Prologue, dtype: DType): MapKernel => ({
  kind: 'map', shape, exprs: [expr], inputs, inDtypes, dtype,
  outputs: [{ shape, strides: shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)), offset: 0 }],
});

/** C[b] = epilogue(A[b] @ B[b]) for strided A [M,K] and B [K,N] per batch; C contiguous [batch, M, N]. */
export interface MatmulKernel {
  kind: 'matmul';
  batch: number;
  m: number;
  n: number;
  k: number;
  a: { offset: number; batchStride: number; rowStride: number; colStride: number };
  b: { offset: number; batchStride: number; rowStride: number; colStride: number };
  /**
   * Applied in the store: expr of the float32 sum (input 0) and of views shaped
   * [batch, M, N] (inputs 1...; their storages follow A's and B's): bias, activation, residual.
   */
  epilogue?: Epilogue;
  /**
   * Operands computed as they are read (a lazy elementwise result: relu(x), g * mask):
   * A as a prologue of shape [batch, M, K], B of [batch, K, N]. Such an operand's storages
   * are its views' (in place of one), and its layout above is unused.
   */
  aPrologue?: Prologue;
  bPrologue?: Prologue;
  /**
   * Also writes B's column sums (sum over K of each column; batch 1) to a second output of [N]:
   * a Linear layer's bias gradient beside its weight gradient Xᵀ dY, read from the dY the GEMM loads.
   */
  colSums?: boolean;
}

/** How many of a matmul's input storages belong to A and to B; the epilogue's follow. */
export const operandStorages = (k: MatmulKernel): [number, number] => [k.aPrologue?.inputs.length ?? 1, k.bPrologue?.inputs.length ?? 1];

/**
 * A matmul with prologue operands as a plain one over dense [batch, rows, cols] buffers
 * holding their values (the CPU backends compute the prologues first, as for reductions).
 */
export function plainOperands(k: MatmulKernel): MatmulKernel {
  const dense = (p: Prologue | undefined, layout: MatmulKernel['a']) => (p ? { offset: 0, batchStride: p.shape[1] * p.shape[2], rowStride: p.shape[2], colStride: 1 } : layout);
  const { aPrologue, bPrologue, ...plain } = k;
  return { ...plain, a: dense(aPrologue, k.a), b: dense(bPrologue, k.b) };
}

/** Applied at a kernel's store: input 0 of expr is the kernel's result, input k + 1 is views[k] (shaped as the result). */
export interface Epilogue {
  expr: Expr;
  inputs: View[];
  inDtypes: DType[];
}

/** An activation as an expression of `a` (input 0 by default); gelu is the exact (erf) form. */
export function activationExpr(act: Activation, a: Expr = x(0)): Expr {
  return act === 'gelu' ? f('mul', f('mul', c(0.5), a), f('add', c(1), f('erf', f('mul', a, c(Math.SQRT1_2))))) : f(act, a);
}

/** Softmax or log-softmax over the middle axis of a contiguous [outer, n, inner]. */
export interface SoftmaxKernel {
  kind: 'softmax';
  outer: number;
  n: number;
  inner: number;
  log: boolean;
}

/**
 * torch.gather over contiguous input and index: out[p] = input[p with coord[dim] := index[p]].
 * `scatter` reverses it: out (zero-filled, input-shaped) += grad[p] at that position.
 */
export interface GatherKernel {
  kind: 'gather' | 'scatterAdd';
  dim: number;
  inputShape: number[];
  indexShape: number[];
  /** The op to name when an index is out of range (the CPU throws; WebGPU flags it for Backend.checkFlags). */
  op: string;
  /** The indices are class targets of the loss `op` names, so an error speaks of targets and classes. */
  classTargets?: boolean;
}

/** The one message for an out-of-range index, on every backend (PyTorch raises for negative ones too). */
export const indexError = ({ op, dim, classTargets }: Pick<GatherKernel, 'op' | 'dim' | 'classTargets'>, index: number, size: number) =>
  new RangeError(classTargets
    ? `${op}: target ${index} is out of range for ${size} classes`
    : `${op}: index ${index} is out of range for dim ${dim} with size ${size}`);

/** Counter-based random numbers: the same (seed, counter) gives the same stream on both backends. */
export interface RandKernel {
  kind: 'rand';
  dist: 'uniform' | 'normal' | 'bernoulli';
  size: number;
  seed: number;
  counter: number;
  /** bernoulli: probability of 1. */
  p: number;
}

/**
 * 2-D convolution over strided 4-D views, always indexed in PyTorch's order:
 * x [N, C, H, W], w [O, C/groups, KH, KW], y [N, O, OH, OW]. Channels-last
 * data (NHWC, Keras's [KH, KW, C/groups, O] kernel) is the same indexing
 * with other strides, so neither layout is copied. y[n, o, p, q] reads
 * x[n, c, p*stride + i*dilation - pad, ...] for each tap (i, j); taps in
 * the padding read 0. Per mode, inputs and output:
 * - 'forward':    [x, w, bias?] -> y = act(conv + bias[o])
 * - 'gradInput':  [dy, w] -> dx (the transposed convolution)
 * - 'gradWeight': [x, dy] -> dw
 * Every output element is written (no accumulation into existing data).
 */
export interface ConvKernel {
  kind: 'conv';
  mode: 'forward' | 'gradInput' | 'gradWeight';
  /** [N, C, H, W, O, OH, OW, KH, KW]. */
  dims: [number, number, number, number, number, number, number, number, number];
  stride: [number, number];
  dilation: [number, number];
  /** Padding before the first row and column (after the last is implied by OH, OW). */
  pad: [number, number];
  groups: number;
  x: View;
  w: View;
  y: View;
  /** forward: a contiguous [O] input after x and w. */
  bias?: boolean;
  /** forward: applied after the bias. */
  activation?: Activation | null;
  /**
   * gradWeight on WebGPU: the sum over (n, p) cut into this many ranges, each written as a
   * whole dw (laid out as w's view says) one dw's size after the other; the op sums them.
   */
  chunks?: number;
}

/**
 * 2-D max or average pooling over strided 4-D views in PyTorch's order: x
 * [N, C, H, W], y [N, C, OH, OW] (channels-last data is the same indexing
 * with other strides). Window (p, q)'s tap (i, j) reads x[n, c, p*stride +
 * i*dilation - pad, ...]; taps outside the image are left out (max: as
 * -Infinity; average: as zeros). Per mode, inputs and output:
 * - 'max':     [x] -> y, the first largest value of each window (NaN wins, as in PyTorch)
 * - 'avg':     [x] -> y, each window's sum over its divisor
 * - 'maxGrad': [x, dy] -> dx: each input element gathers dy of the windows whose max it is
 * - 'avgGrad': [dy] -> dx: each input element gathers dy / divisor of the windows that cover it
 * The grad modes give each input element one thread that reads the windows
 * covering it, so nothing is scattered and no two threads write one element.
 */
export interface PoolKernel {
  kind: 'pool';
  mode: 'max' | 'avg' | 'maxGrad' | 'avgGrad';
  /** [N, C, H, W, OH, OW, KH, KW]. */
  dims: [number, number, number, number, number, number, number, number];
  stride: [number, number];
  dilation: [number, number];
  /** Padding before the first row and column. */
  pad: [number, number];
  /** Where the padded image ends, [H + bottom, W + right]: an average's divisor counts taps up to here when countIncludePad. */
  end: [number, number];
  countIncludePad: boolean;
  /** max, avg, maxGrad: the input read. */
  x: View;
  /** max, avg: the output; grad modes: dy. */
  y: View;
  /** Grad modes: the gradient written, shaped as x. */
  dx: View;
}

/**
 * Softmax cross-entropy and accuracy over rows of class scores x, contiguous [rows, classes],
 * as one kernel each. Per mode, inputs and output:
 * - 'loss':  [x, target, weight?] -> the loss: [] (reduction 'mean' or 'sum') or [rows] ('none')
 * - 'grad':  [x, target, weight?, g] -> dx [rows, classes] (g shaped as the loss)
 * - 'hits':  [x, target] -> [] the fraction of rows whose argmax (of softmax(x) when `softmax`) is the target class
 * Targets are classes [rows] (`sparse`: int32, or float32 read as int32 would be) or float32
 * distributions [rows, classes]. Row r's
 * loss is sum_c q_c w_c (logsumexp(x_r) - x_rc), q the target distribution mixed with the uniform
 * one by `smoothing` (PyTorch's label smoothing), w the class weights (1 without a weight input).
 * Sparse rows whose target is `ignoreIndex` count for nothing; 'mean' divides by the kept rows'
 * weight sum w[t_r] for sparse targets and by the row count for distributions, as PyTorch does.
 */
export interface ClassesKernel {
  kind: 'classes';
  mode: 'loss' | 'grad' | 'hits';
  rows: number;
  classes: number;
  sparse: boolean;
  weighted: boolean;
  ignoreIndex: number | null;
  smoothing: number;
  reduction: 'mean' | 'sum' | 'none';
  /** hits: compare the argmax of softmax(x) (ties as the softmax output rounds them), not of x. */
  softmax: boolean;
  /** The loss an out-of-range target is reported as. */
  op: string;
  /** grad: the incoming gradient when it is a known constant (the backward seed): no g input then. */
  gradConstant?: number;
  /** Where the (contiguous) targets start in their storage: a batch's rows of a fit's data are read in place. */
  targetOffset: number;
  /**
   * loss: also writes to a second output the gradient the 'grad' mode would for an incoming
   * gradient of 1 (each row's, for reduction 'none'), so a backward needs no kernel of its own.
   */
  withGrad?: boolean;
}

/**
 * Scaled dot-product attention over heads [N, H] without the [L, S] scores in memory:
 * each query row's scores are made, softmaxed (running max and sum) and applied to v
 * a tile of keys at a time; the backward recomputes them from the row's logsumexp.
 * Every tensor is a 4-D view indexed [n, h, row, feature]; the mask, when present, is an
 * additive [N, H, L, S] view (stride 0 where it broadcasts); causal blocks keys j > i.
 * Per mode, inputs and outputs (in this order, and `views` lists every one but stats):
 * - 'forward': [q, k, v, mask?] -> [o]
 * - 'gradQ':   [q, k, v, mask?, o, dO] -> [dq, stats]   stats: contiguous [N*H*L, 2] of each
 *              row's logsumexp and sum(dO * o), which gradKV reads
 * - 'gradKV':  [q, k, v, mask?, dO, stats] -> [dk, dv]
 */
export interface AttentionKernel {
  kind: 'attention';
  mode: 'forward' | 'gradQ' | 'gradKV';
  /** [N, H, L, S, D, DV]. */
  dims: [number, number, number, number, number, number];
  scale: number;
  causal: boolean;
  mask: boolean;
  views: View[];
}

/**
 * What input k of a recurrent cell's expressions reads at step t, batch row b, unit j (see ScanKernel).
 * `hg` and `viaW` are dot products the kernel computes: the step's recurrent matmul, row by row.
 */
export type CellSource =
  | { from: 'xg'; gate: number } // xg[t, b, gate*H + j]
  | { from: 'hg'; gate: number } // sum_i h_prev[b, i] * whh[gate*H + j, i] (forward)
  | { from: 'bias'; gate: number } // bhh[gate*H + j]
  | { from: 'mask' } // mask[t, b]
  | { from: 'state'; slot: number; prev: boolean } // out[slot, previous or current time index, b, j]
  | { from: 'grad'; slot: number } // grad[slot, current time index, b, j] (backward)
  | { from: 'carry'; index: number } // what the backward pass carries to the previous step: dh (0), dc (1)
  | { from: 'viaW' }; // sum_k d[b, k] * whh[k, j], d the gradient row the step after wrote to dhg (backward)

/** Where a cell's expression k is stored. */
export type CellTarget =
  | { to: 'state'; slot: number } // out[slot, current time index, b, j] (forward)
  | { to: 'dxg'; gate: number } // dxg[t, b, gate*H + j]
  | { to: 'dhg'; gate: number } // dhg[t, b, gate*H + j]: the gradient of h @ whh^T (the GRU's differs from dxg)
  | { to: 'carry'; index: number };

/**
 * A recurrent layer's whole time loop as one kernel (the fused 'recurrent' op): for each batch
 * row, T steps in order (reversed with `reverse`), each step the cell's expressions over the
 * sources above, for every unit j. Time indices as the op's output: step t reads index t and
 * writes t + 1 (reverse: reads t + 1, writes t). Buffers, every one dense at its offset:
 * - forward, inputs [xg [T, B, G*H], whh [G*H, H], bhh [G*H] (gru), mask [T, B] (masked)],
 *   output [out [S, T+1, B, H]], which the kernel also reads (the previous step's state);
 * - backward, inputs [grad [S, T+1, B, H], out, whh, mask (masked)], outputs [dxg [T, B, G*H],
 *   dhg (gru), dh0 [B, H], dc0 [B, H] (lstm)]. The carries start at 0; after the last step,
 *   dh0 = grad[0] + viaW + carry 0 and dc0 = grad[1] + carry 1 at the initial state's index.
 * The row viaW reads is dhg where the cell writes one, else dxg.
 */
export interface ScanKernel {
  kind: 'scan';
  pass: 'forward' | 'backward';
  mode: 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';
  T: number;
  B: number;
  H: number;
  G: number;
  reverse: boolean;
  masked: boolean;
  sources: CellSource[];
  exprs: Expr[];
  targets: CellTarget[];
  /** Each buffer's element offset, inputs then outputs. */
  offsets: number[];
}

export type Kernel = MapKernel | MultiMapKernel | ReduceKernel | MatmulKernel | SoftmaxKernel | GatherKernel | RandKernel | ConvKernel | PoolKernel | ClassesKernel | AttentionKernel | ScanKernel;

/** PCG hash shared by both backends (u32 arithmetic). */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform in (0, 1): 24 random bits, offset by half a step so log() is finite. */
export function uniformAt(seed: number, counter: number, i: number): number {
  const h = pcgHash((pcgHash((seed ^ Math.imul(counter, 0x9e3779b9)) >>> 0) + i) >>> 0);
  return ((h >>> 8) + 0.5) / 16777216;
}

/**
 * The kernel reading input storages `moved` (by index) `delta` elements further on, or null when
 * this kind reads them at a fixed place: a fit plan's launches follow the batch's rows this way
 * instead of copying them into a storage of the step's own.
 */
export function shiftInputs(k: Kernel, moved: boolean[], delta: number): Kernel | null {
  const shift = (v: View): View => ({ ...v, offset: v.offset + delta });
  const views = (vs: View[], from: number) => vs.map((v, j) => (moved[from + j] ? shift(v) : v));
  if (!moved.some(Boolean)) return k;
  switch (k.kind) {
    case 'map': return { ...k, inputs: views(k.inputs, 0) };
    case 'reduce': return k.prologue ? { ...k, prologue: { ...k.prologue, inputs: views(k.prologue.inputs, 0) } } : null;
    case 'matmul': {
      const [na, nb] = operandStorages(k);
      const operand = (p: Prologue | undefined, layout: MatmulKernel['a'], from: number) =>
        p ? { prologue: { ...p, inputs: views(p.inputs, from) }, layout } : { prologue: p, layout: moved[from] ? { ...layout, offset: layout.offset + delta } : layout };
      const a = operand(k.aPrologue, k.a, 0);
      const b = operand(k.bPrologue, k.b, na);
      return {
        ...k, a: a.layout, b: b.layout,
        ...(a.prologue ? { aPrologue: a.prologue } : {}), ...(b.prologue ? { bPrologue: b.prologue } : {}),
        ...(k.epilogue ? { epilogue: { ...k.epilogue, inputs: views(k.epilogue.inputs, na + nb) } } : {}),
      };
    }
    // Only the targets (input 1) are read at an offset of their own.
    case 'classes': return moved.every((m, j) => !m || j === 1) ? { ...k, targetOffset: k.targetOffset + delta } : null;
    default: return null;
  }
}
