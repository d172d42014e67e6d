// The 'classes' kernel (softmax cross-entropy and accuracy, see ClassesKernel)
// in plain TypeScript: the CPU backend's, and the wasm backend's over views of
// its memory. Values are rounded to float32 where the WGSL twin
// (shaders/cross_entropy.wgsl) stores or accumulates them.

import type { TypedArray } from './backend.js';
import { indexError, type ClassesKernel } from './kernel.js';

const f = Math.fround;

/** NaN first, then the larger value; ties keep the earlier index (PyTorch's argmax). */
function argmaxRow(v: (c: number) => number, n: number): number {
  let best = 0;
  let bv = v(0);
  for (let c = 1; c < n; c++) {
    const x = v(c);
    if (Number.isNaN(bv)) break;
    if (Number.isNaN(x) || x > bv) { best = c; bv = x; }
  }
  return best;
}

/** Writes each output of the kernel: the loss kernel's gradient (withGrad) after its loss. */
export function classesKernel(k: ClassesKernel, ins: TypedArray[], outs: TypedArray[]): void {
  classesOutput(k, ins, outs[0]);
  if (k.mode === 'loss' && k.withGrad) classesOutput({ ...k, mode: 'grad', gradConstant: 1 }, ins, outs[1]);
}

function classesOutput(k: ClassesKernel, ins: TypedArray[], out: TypedArray): void {
  const { rows, classes: n, sparse, smoothing: eps, reduction } = k;
  const [x, all] = ins;
  const target = all.subarray(k.targetOffset);
  const weight = k.weighted ? ins[2] : null;
  const w = (c: number) => (weight ? weight[c] : 1);
  // Row max and log of the sum of exp(x - max), as the softmax kernel computes them.
  const stats = (base: number) => {
    let m = -Infinity;
    for (let c = 0; c < n; c++) m = Math.max(m, x[base + c]);
    let s = 0;
    for (let c = 0; c < n; c++) s = f(s + f(Math.exp(f(x[base + c] - m))));
    return { m, s, logS: f(Math.log(s)) };
  };
  /** The row's target class, or -1 when ignored (sparse targets). */
  const targetOf = (r: number) => {
    const t = Math.trunc(target[r]);
    if (k.ignoreIndex !== null && t === k.ignoreIndex) return -1;
    if (t < 0 || t >= n) throw indexError({ op: k.op, dim: 1, classTargets: true }, t, n);
    return t;
  };
  /** q_c w_c: the (smoothed) target distribution times the class weight. */
  const mass = (r: number, c: number, t: number) => {
    const q = sparse ? (t < 0 ? 0 : f(f((1 - eps) * +(c === t)) + f(eps / n))) : f(f(target[r * n + c] * (1 - eps)) + f(eps / n));
    return f(q * w(c));
  };

  if (k.mode === 'hits') {
    let hits = 0;
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      const st = k.softmax ? stats(base) : null;
      const a = argmaxRow((c) => (st ? f(f(Math.exp(f(x[base + c] - st.m))) / st.s) : x[base + c]), n);
      const b = sparse ? Math.trunc(target[r]) : argmaxRow((c) => target[base + c], n);
      hits += +(a === b);
    }
    out[0] = f(hits / rows);
    return;
  }

  const ts = sparse ? Array.from({ length: rows }, (_, r) => targetOf(r)) : null;
  const denom = (r: number) => (!ts ? 1 : ts[r] < 0 ? 0 : w(ts[r]));
  if (k.mode === 'loss') {
    let loss = 0;
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      const { m, logS } = stats(base);
      const t = ts ? ts[r] : 0;
      let l = 0;
      for (let c = 0; c < n; c++) {
        const q = mass(r, c, t);
        if (q !== 0) l = f(l + f(q * f(logS - f(x[base + c] - m))));
      }
      if (reduction === 'none') out[r] = l;
      loss = f(loss + l);
      total = f(total + denom(r));
    }
    if (reduction !== 'none') out[0] = reduction === 'mean' ? f(loss / total) : loss;
    return;
  }

  const g = ins[k.weighted ? 3 : 2];
  const gradOf = (r: number) => k.gradConstant ?? (reduction === 'none' ? g[r] : g[0]);
  let total = 0;
  for (let r = 0; r < rows; r++) total = f(total + denom(r));
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    const { m, s } = stats(base);
    const t = ts ? ts[r] : 0;
    const scale = reduction === 'mean' ? f(gradOf(r) / total) : gradOf(r);
    let sum = 0;
    for (let c = 0; c < n; c++) sum = f(sum + mass(r, c, t));
    for (let c = 0; c < n; c++) {
      const p = f(f(Math.exp(f(x[base + c] - m))) / s);
      out[base + c] = f(scale * f(f(sum * p) - mass(r, c, t)));
    }
  }
}
