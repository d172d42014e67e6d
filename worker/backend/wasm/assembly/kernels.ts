// Hand-written kernels of the wasm backend, in AssemblyScript (compiled by
// `npm run build`, see rollup.config.mjs). They work on raw byte addresses in
// the one imported memory: the backend owns allocation, these only compute.
// Transcendentals are computed in f64 and rounded once, like the CPU oracle.

// ---- GEMM: packed panels, a 4x8 register tile of f32x4 accumulators ----

const MR = 4;
const NR = 8;
/** K is cut into KC-deep slices so one packed B panel (KC x 8) stays in L1. */
const KC = 256;
/** Rows of A packed at a time: MC x KC floats stay in L2. */
const MC = 64;

/** Scratch bytes gemm needs for an n-column output (packed B slice + packed A block + one tile). */
export function gemmScratchBytes(n: i32): i32 {
  const np = (n + NR - 1) / NR * NR;
  return (KC * np + MC * KC + MR * NR) * 4;
}

/**
 * C[r0..r1) = act(A @ B + bias) for one batch: A [m,k] and B [k,n] strided (in elements),
 * C contiguous [m,n]. Each output element sums its K-slices in the same order whatever
 * [r0, r1) is, so splitting rows over threads gives identical results.
 */
export function gemm(
  a: usize, ars: i32, acs: i32, b: usize, brs: i32, bcs: i32, c: usize, bias: usize, act: i32,
  n: i32, k: i32, r0: i32, r1: i32, scratch: usize,
): void {
  if (r1 <= r0 || n <= 0) return;
  const np = (n + NR - 1) / NR * NR;
  const bp = scratch;
  const ap = bp + <usize>(KC * np) * 4;
  const tile = ap + <usize>(MC * KC) * 4;
  if (k <= 0) memory.fill(c + <usize>(r0 * n) * 4, 0, <usize>((r1 - r0) * n) * 4);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    packB(b + <usize>(pc * brs) * 4, brs, bcs, kc, n, bp);
    for (let ic = r0; ic < r1; ic += MC) {
      const mc = min(MC, r1 - ic);
      packA(a + <usize>(ic * ars + pc * acs) * 4, ars, acs, mc, kc, ap);
      for (let jr = 0; jr < n; jr += NR) {
        const bPanel = bp + <usize>(jr * kc) * 4;
        for (let ir = 0; ir < mc; ir += MR) {
          micro(kc, ap + <usize>(ir * kc) * 4, bPanel, c + <usize>((ic + ir) * n + jr) * 4, n, min(MR, mc - ir), min(NR, n - jr), pc == 0, tile);
        }
      }
    }
  }
  if (bias != 0 || act != 0) epilogue(c + <usize>(r0 * n) * 4, r1 - r0, n, bias, act);
}

/** Panels of NR columns, each [kc][NR], zero-padded past n. */
function packB(b: usize, brs: i32, bcs: i32, kc: i32, n: i32, out: usize): void {
  for (let j = 0; j < n; j += NR) {
    const cols = min(NR, n - j);
    let dst = out + <usize>(j * kc) * 4;
    if (cols == NR && bcs == 1) {
      for (let p = 0; p < kc; p++) {
        const src = b + <usize>(p * brs + j) * 4;
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        dst += NR * 4;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let q = 0; q < NR; q++) {
          store<f32>(dst + <usize>q * 4, q < cols ? load<f32>(b + <usize>(p * brs + (j + q) * bcs) * 4) : 0);
        }
        dst += NR * 4;
      }
    }
  }
}

/** Panels of MR rows, each [kc][MR], zero-padded past mc. */
function packA(a: usize, ars: i32, acs: i32, mc: i32, kc: i32, out: usize): void {
  for (let i = 0; i < mc; i += MR) {
    const rows = min(MR, mc - i);
    const panel = out + <usize>(i * kc) * 4;
    for (let r = 0; r < MR; r++) {
      let dst = panel + <usize>r * 4;
      if (r < rows) {
        let src = a + <usize>((i + r) * ars) * 4;
        for (let p = 0; p < kc; p++) {
          store<f32>(dst, load<f32>(src));
          src += <usize>acs * 4;
          dst += MR * 4;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          store<f32>(dst, 0);
          dst += MR * 4;
        }
      }
    }
  }
}

/** One MR x NR tile of C: overwritten on the first K-slice, accumulated on later ones. */
// @ts-ignore: decorator
@inline
function micro(kc: i32, ap: usize, bp: usize, c: usize, ldc: i32, rows: i32, cols: i32, first: bool, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let av = v128.load32_splat(ap);
    c00 = f32x4.add(c00, f32x4.mul(av, b0)); c01 = f32x4.add(c01, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(av, b0)); c11 = f32x4.add(c11, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(av, b0)); c21 = f32x4.add(c21, f32x4.mul(av, b1));
    av = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(av, b0)); c31 = f32x4.add(c31, f32x4.mul(av, b1));
    ap += MR * 4;
    bp += NR * 4;
  }
  const full = rows == MR && cols == NR;
  // A partial tile goes through `tile`, then only its valid part reaches C.
  const ld: usize = full ? <usize>ldc * 4 : NR * 4;
  const dst = full ? c : tile;
  if (full && !first) {
    c00 = f32x4.add(c00, v128.load(dst)); c01 = f32x4.add(c01, v128.load(dst, 16));
    c10 = f32x4.add(c10, v128.load(dst + ld)); c11 = f32x4.add(c11, v128.load(dst + ld, 16));
    c20 = f32x4.add(c20, v128.load(dst + 2 * ld)); c21 = f32x4.add(c21, v128.load(dst + 2 * ld, 16));
    c30 = f32x4.add(c30, v128.load(dst + 3 * ld)); c31 = f32x4.add(c31, v128.load(dst + 3 * ld, 16));
  }
  v128.store(dst, c00); v128.store(dst, c01, 16);
  v128.store(dst + ld, c10); v128.store(dst + ld, c11, 16);
  v128.store(dst + 2 * ld, c20); v128.store(dst + 2 * ld, c21, 16);
  v128.store(dst + 3 * ld, c30); v128.store(dst + 3 * ld, c31, 16);
  if (!full) {
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < cols; q++) {
        const to = c + <usize>(r * ldc + q) * 4;
        const v = load<f32>(tile + <usize>(r * NR + q) * 4);
        store<f32>(to, first ? v : load<f32>(to) + v);
      }
    }
  }
}

const ACT_RELU = 1;
const ACT_SIGMOID = 2;
const ACT_TANH = 3;
const ACT_GELU = 4;

function epilogue(c: usize, rows: i32, n: i32, bias: usize, act: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      const at = c + <usize>(r * n + j) * 4;
      let v = load<f32>(at);
      if (bias != 0) v += load<f32>(bias + <usize>j * 4);
      store<f32>(at, activate(v, act));
    }
  }
}

function activate(v: f32, act: i32): f32 {
  if (act == ACT_RELU) return v <= 0 ? 0 : v; // NaN stays NaN, as in PyTorch
  if (act == ACT_SIGMOID) return <f32>sigmoid(v);
  if (act == ACT_TANH) return <f32>Math.tanh(v);
  if (act == ACT_GELU) return <f32>(0.5 * v * (1 + erf(v * Math.SQRT1_2)));
  return v;
}

// ---- elementwise functions the generated map loops call (scalar and 4-lane) ----

function sigmoid(a: f64): f64 {
  return a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a));
}

// Abramowitz & Stegun 7.1.26, as kernel.ts's erf.
function erf(x: f64): f64 {
  const s: f64 = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

function softplus(a: f64): f64 {
  return Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a)));
}

export function exp1(a: f32): f32 { return <f32>Math.exp(a); }
export function log1(a: f32): f32 { return <f32>Math.log(a); }
export function sin1(a: f32): f32 { return <f32>Math.sin(a); }
export function cos1(a: f32): f32 { return <f32>Math.cos(a); }
export function tanh1(a: f32): f32 { return <f32>Math.tanh(a); }
export function sigmoid1(a: f32): f32 { return <f32>sigmoid(a); }
export function erf1(a: f32): f32 { return <f32>erf(a); }
export function softplus1(a: f32): f32 { return <f32>softplus(a); }
export function pow1(a: f32, b: f32): f32 { return <f32>Math.pow(a, b); }

// @ts-ignore: decorator
@inline
function lanes(v: v128, fn: (x: f64) => f64): v128 {
  let r = f32x4.splat(<f32>fn(f32x4.extract_lane(v, 0)));
  r = f32x4.replace_lane(r, 1, <f32>fn(f32x4.extract_lane(v, 1)));
  r = f32x4.replace_lane(r, 2, <f32>fn(f32x4.extract_lane(v, 2)));
  return f32x4.replace_lane(r, 3, <f32>fn(f32x4.extract_lane(v, 3)));
}

export function exp4(v: v128): v128 { return lanes(v, (x: f64): f64 => Math.exp(x)); }
export function log4(v: v128): v128 { return lanes(v, (x: f64): f64 => Math.log(x)); }
export function sin4(v: v128): v128 { return lanes(v, (x: f64): f64 => Math.sin(x)); }
export function cos4(v: v128): v128 { return lanes(v, (x: f64): f64 => Math.cos(x)); }
export function tanh4(v: v128): v128 { return lanes(v, (x: f64): f64 => Math.tanh(x)); }
export function sigmoid4(v: v128): v128 { return lanes(v, (x: f64): f64 => sigmoid(x)); }
export function erf4(v: v128): v128 { return lanes(v, (x: f64): f64 => erf(x)); }
export function softplus4(v: v128): v128 { return lanes(v, (x: f64): f64 => softplus(x)); }
export function pow4(a: v128, b: v128): v128 {
  let r = f32x4.splat(<f32>Math.pow(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0)));
  r = f32x4.replace_lane(r, 1, <f32>Math.pow(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1)));
  r = f32x4.replace_lane(r, 2, <f32>Math.pow(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2)));
  return f32x4.replace_lane(r, 3, <f32>Math.pow(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3)));
}

// ---- reductions over the middle axis of [outer, n, inner] ----

const OP_SUM = 0;
const OP_MAX = 1;
const OP_MIN = 2;
const OP_ARGMAX = 3;
const OP_ARGMIN = 4;

/** Float sums; columns of `inner` run four at a time, each summed in order like the oracle. */
export function reduceSumF32(x: usize, out: usize, outer: i32, n: i32, inner: i32, scale: f32): void {
  for (let o = 0; o < outer; o++) {
    const base = x + <usize>(o * n * inner) * 4;
    const dst = out + <usize>(o * inner) * 4;
    if (inner == 1) {
      let acc: f64 = 0;
      for (let j = 0; j < n; j++) acc += load<f32>(base + <usize>j * 4);
      store<f32>(dst, <f32>acc * scale);
      continue;
    }
    let i = 0;
    for (; i + 4 <= inner; i += 4) {
      let lo = f64x2.splat(0), hi = f64x2.splat(0);
      let src = base + <usize>i * 4;
      for (let j = 0; j < n; j++) {
        const v = v128.load(src);
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
        src += <usize>inner * 4;
      }
      const s = f32x4.mul(i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5), f32x4.splat(scale));
      v128.store(dst + <usize>i * 4, s);
    }
    for (; i < inner; i++) {
      let acc: f64 = 0;
      for (let j = 0; j < n; j++) acc += load<f32>(base + <usize>(j * inner + i) * 4);
      store<f32>(dst + <usize>i * 4, <f32>acc * scale);
    }
  }
}

/** Max/min/argmax/argmin (NaN propagates and wins, as in PyTorch) and int32 sums. */
export function reduceScalar(x: usize, out: usize, outer: i32, n: i32, inner: i32, op: i32, isInt: bool): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = x + <usize>(o * n * inner + i) * 4;
      const dst = out + <usize>(o * inner + i) * 4;
      if (isInt) {
        if (op == OP_SUM) {
          let acc: i32 = 0;
          for (let j = 0; j < n; j++) acc += load<i32>(base + <usize>(j * inner) * 4);
          store<i32>(dst, acc);
          continue;
        }
        let best = 0;
        let acc = load<i32>(base);
        for (let j = 1; j < n; j++) {
          const v = load<i32>(base + <usize>(j * inner) * 4);
          if ((op == OP_MAX || op == OP_ARGMAX) ? v > acc : v < acc) { acc = v; best = j; }
        }
        store<i32>(dst, op == OP_ARGMAX || op == OP_ARGMIN ? best : acc);
        continue;
      }
      let acc: f32 = op == OP_MAX || op == OP_ARGMAX ? -Infinity : Infinity;
      let best = 0;
      for (let j = 0; j < n; j++) {
        const v = load<f32>(base + <usize>(j * inner) * 4);
        if (isNaN(v)) {
          if (!isNaN(acc)) { acc = v; best = j; }
        } else if ((op == OP_MAX || op == OP_ARGMAX) ? v > acc : v < acc) { acc = v; best = j; }
      }
      if (op == OP_ARGMAX || op == OP_ARGMIN) store<i32>(dst, best);
      else store<f32>(dst, acc);
    }
  }
}

// ---- softmax / log-softmax over the middle axis of [outer, n, inner] ----

export function softmax(x: usize, out: usize, outer: i32, n: i32, inner: i32, log: bool): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = <usize>(o * n * inner + i) * 4;
      const step = <usize>inner * 4;
      let max: f64 = -Infinity;
      for (let j = 0; j < n; j++) max = Math.max(max, <f64>load<f32>(x + base + <usize>j * step));
      let sum: f64 = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(<f64>load<f32>(x + base + <usize>j * step) - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < n; j++) {
        const z = <f64>load<f32>(x + base + <usize>j * step) - max;
        store<f32>(out + base + <usize>j * step, <f32>(log ? z - logSum : Math.exp(z) / sum));
      }
    }
  }
}
