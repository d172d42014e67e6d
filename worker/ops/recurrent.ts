// One recurrent layer in one direction (LSTM, GRU or Elman RNN) as a single
// op. Its cells are defined once (forwardCell, backwardCell: expressions over
// named sources). On WebGPU and cpu the whole time loop is ONE scan kernel
// (ScanKernel in worker/backend/kernel.ts): each step's recurrent matmul
// h @ W_hh^T, every gate nonlinearity and the state update run inside it, so
// a layer's forward is two kernels (the initial state's copy, the scan)
// instead of two per step. Backward mirrors it: one scan walks the steps
// back, computing each step's gate gradients and their product with W_hh for
// the step before. On wasm each step is one matmul and one fused cell map
// (forward), one map and one matmul (backward). Either way a single matmul
// then gives dW_hh over all steps. The input projection
// x @ W_ih^T + b for all steps is computed by the caller, in one matmul, and
// arrives as `xg`.
//
// Inputs: xg [T, B, G*H], whh [G*H, H], h0 [B, H], then c0 [B, H] (LSTM) or
// bhh [G*H] (GRU: its n-gate part sits inside r * (W_hn h + b_hn), so it
// cannot be folded into xg), then mask [T, B] when `masked`.
// Output [S, T+1, B, H]: slot 0 holds h and, for the LSTM, slot 1 holds c, at
// every time index; the other slots keep the gate activations backward needs.
// The forward direction keeps its initial state at time index 0 and the state
// after step t at t+1; the reverse direction keeps the state after step t at
// t and its initial state at T. So the sequence of outputs is the contiguous
// block out[0, 1:] (forward) or out[0, :T] (reverse), and the final state is
// out[., T] (forward) or out[., 0] (reverse). Gradients flow from the state
// slots only: the activation slots are saved tensors, not results.
//
// Masked steps (mask 0, past a sequence's length) keep the state unchanged,
// so one batched loop serves sequences of different lengths, and the reverse
// direction starts each sequence at its own last valid step.

import * as spec from '../../lib/ops/recurrent.js';
import { checkShapes, unpack, type CellMode } from '../../lib/ops/recurrent.js';
import { c, f, x, type CellSource, type CellTarget, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { matmulViews, mT } from './matmul.js';
import { implement } from './op.js';

// ---- views ------------------------------------------------------------------

/** [B, H] view of slot k at time index i of an [S, T+1, B, H] tensor. */
const slotOf = (ctx: Ctx, a: WT, k: number, i: number) =>
  ctx.view(a, [a.shape[2], a.shape[3]], [a.strides[2], a.strides[3]], a.offset + k * a.strides[0] + i * a.strides[1]);
/** The tensor in row-major layout (at any offset), as the scan kernel reads its buffers. */
const dense = (ctx: Ctx, t: WT) => (t.contiguous ? t : ctx.contiguous(t));

/** Collects a cell's sources; each call returns the expression that reads one. */
function cellInputs() {
  const sources: CellSource[] = [];
  return { sources, in: (s: CellSource): Expr => x(sources.push(s) - 1) };
}
const perGate = <T>(G: number, fn: (gate: number) => T) => Array.from({ length: G }, (_, g) => fn(g));

const add = (a: Expr, b: Expr) => f('add', a, b);
const sub = (a: Expr, b: Expr) => f('sub', a, b);
const mul = (...es: Expr[]) => es.reduce((a, b) => f('mul', a, b));
const sig = (a: Expr) => f('sigmoid', a);
const tanh = (a: Expr) => f('tanh', a);
const ONE = c(1);
const ZERO = c(0);
/** s * (1 - s): the sigmoid's derivative from its output. */
const dsig = (s: Expr) => mul(s, sub(ONE, s));
/** 1 - t^2: tanh's derivative from its output. */
const dtanh = (t: Expr) => sub(ONE, mul(t, t));

// ---- the cells ----------------------------------------------------------------

interface Cell {
  sources: CellSource[];
  exprs: Expr[];
  targets: CellTarget[];
}

/** One forward step: the new state and the activations backward needs, from the sources. */
function forwardCell(mode: CellMode, G: number, masked: boolean): Cell {
  const k = cellInputs();
  const xs = perGate(G, (gate) => k.in({ from: 'xg', gate }));
  // The step's recurrent matmul h_prev @ W_hh^T, a row per gate.
  const hs = perGate(G, (gate) => k.in({ from: 'hg', gate }));
  const hp = k.in({ from: 'state', slot: 0, prev: true });
  const m = masked ? k.in({ from: 'mask' }) : null;
  // Past a sequence's end the state carries over unchanged.
  const keep = (next: Expr, old: Expr) => (m ? f('where', m, next, old) : next);
  let exprs: Expr[];
  if (mode === 'lstm') {
    const cp = k.in({ from: 'state', slot: 1, prev: true });
    const [i, fg, g, o] = [sig(add(xs[0], hs[0])), sig(add(xs[1], hs[1])), tanh(add(xs[2], hs[2])), sig(add(xs[3], hs[3]))];
    const cNew = add(mul(fg, cp), mul(i, g));
    exprs = [keep(mul(o, tanh(cNew)), hp), keep(cNew, cp), i, fg, g, o];
  } else if (mode === 'gru') {
    const bs = perGate(G, (gate) => k.in({ from: 'bias', gate }));
    const r = sig(add(xs[0], add(hs[0], bs[0])));
    const z = sig(add(xs[1], add(hs[1], bs[1])));
    const hn = add(hs[2], bs[2]);
    const n = tanh(add(xs[2], mul(r, hn)));
    // PyTorch's order of operations: (h - n) * z + n.
    exprs = [keep(add(mul(sub(hp, n), z), n), hp), r, z, n, hn];
  } else {
    const pre = add(xs[0], hs[0]);
    exprs = [keep(mode === 'rnn_tanh' ? tanh(pre) : f('relu', pre), hp)];
  }
  return { sources: k.sources, exprs, targets: exprs.map((_, slot) => ({ to: 'state', slot })) };
}

/** One backward step: the gate gradients and what is carried to the step before. */
function backwardCell(mode: CellMode, G: number, masked: boolean): Cell {
  const k = cellInputs();
  const saved = (slot: number, prev = false) => k.in({ from: 'state', slot, prev });
  // dh: from the output, from the step after through W_hh, and carried past masked steps.
  const dh = add(add(k.in({ from: 'grad', slot: 0 }), k.in({ from: 'viaW' })), k.in({ from: 'carry', index: 0 }));
  const m = masked ? k.in({ from: 'mask' }) : null;
  // Gradients reach a step's new state only where the mask let it through.
  const live = (e: Expr) => (m ? f('where', m, e, ZERO) : e);
  const pass = (e: Expr, old: Expr) => (m ? f('where', m, e, old) : e);
  const toDxg = perGate(G, (gate): CellTarget => ({ to: 'dxg', gate }));
  if (mode === 'lstm') {
    const dcIn = add(k.in({ from: 'grad', slot: 1 }), k.in({ from: 'carry', index: 1 }));
    const [i, fg, g, o, cNew, cPrev] = [saved(2), saved(3), saved(4), saved(5), saved(1), saved(1, true)];
    const tc = tanh(cNew);
    const dhNew = live(dh);
    const dcNew = live(add(dcIn, mul(dh, o, dtanh(tc))));
    return {
      sources: k.sources,
      exprs: [mul(dcNew, g, dsig(i)), mul(dcNew, cPrev, dsig(fg)), mul(dcNew, i, dtanh(g)), mul(dhNew, tc, dsig(o)), pass(ZERO, dh), pass(mul(dcNew, fg), dcIn)],
      targets: [...toDxg, { to: 'carry', index: 0 }, { to: 'carry', index: 1 }],
    };
  }
  if (mode === 'gru') {
    const [r, z, n, hn, hPrev] = [saved(1), saved(2), saved(3), saved(4), saved(0, true)];
    const dhNew = live(dh);
    const dnPre = mul(dhNew, sub(ONE, z), dtanh(n));
    const drPre = mul(dnPre, hn, dsig(r));
    const dzPre = mul(dhNew, sub(hPrev, n), dsig(z));
    return {
      sources: k.sources,
      exprs: [drPre, dzPre, dnPre, drPre, dzPre, mul(dnPre, r), pass(mul(dh, z), dh)],
      targets: [...toDxg, ...perGate(G, (gate): CellTarget => ({ to: 'dhg', gate })), { to: 'carry', index: 0 }],
    };
  }
  const h = saved(0);
  return {
    sources: k.sources,
    exprs: [mul(live(dh), mode === 'rnn_tanh' ? dtanh(h) : f('gt', h, ZERO)), pass(ZERO, dh)],
    targets: [...toDxg, { to: 'carry', index: 0 }],
  };
}

// ---- per-step execution (wasm) ------------------------------------------------

// The wasm backend runs the cells as per-step ops: each step's matmul on its SIMD GEMM and the
// cell as a compiled wasm loop, which measured several times faster than the scan kernel's JS
// loops there (bench/NOTES.md).

/** [B, H] view of gate k at time t of a [T, B, G*H] tensor. */
const gateOf = (ctx: Ctx, a: WT, t: number, k: number, H: number) =>
  ctx.view(a, [a.shape[1], H], [a.strides[1], a.strides[2]], a.offset + t * a.strides[0] + k * H * a.strides[2]);
/** [B, H] view of gate k of a [B, G*H] matrix. */
const gateCols = (ctx: Ctx, a: WT, k: number, H: number) =>
  ctx.view(a, [a.shape[0], H], [a.strides[0], a.strides[1]], a.offset + k * H * a.strides[1]);
/** [H] view of gate k of a [G*H] bias (broadcast over the batch by the kernel). */
const biasOf = (ctx: Ctx, b: WT, k: number, H: number) => ctx.view(b, [H], [b.strides[0]], b.offset + k * H * b.strides[0]);
/** [B, 1] view of the mask at time t, broadcast over the hidden dim. */
const maskOf = (ctx: Ctx, m: WT, t: number) => ctx.view(m, [m.shape[1], 1], [m.strides[1], 0], m.offset + t * m.strides[0]);

/** Time indices of step t: where its previous state is read and its new state written. */
const indices = (t: number, reverse: boolean) => (reverse ? { prev: t + 1, cur: t } : { prev: t, cur: t + 1 });

interface StepTensors {
  xg?: WT; hg?: WT; bhh?: WT; mask?: WT; out: WT; grad?: WT; carry?: WT[]; viaW?: WT; dxg?: WT; dhg?: WT;
}

/** Runs one step's cell as a map over [B, H] views. */
function stepCell(ctx: Ctx, cell: Cell, ts: StepTensors, t: number, reverse: boolean, H: number) {
  const { prev, cur } = indices(t, reverse);
  const view = (s: CellSource): WT => {
    switch (s.from) {
      case 'xg': return gateOf(ctx, ts.xg!, t, s.gate, H);
      case 'hg': return gateCols(ctx, ts.hg!, s.gate, H);
      case 'bias': return biasOf(ctx, ts.bhh!, s.gate, H);
      case 'mask': return maskOf(ctx, ts.mask!, t);
      case 'state': return slotOf(ctx, ts.out, s.slot, s.prev ? prev : cur);
      case 'grad': return slotOf(ctx, ts.grad!, s.slot, cur);
      case 'carry': return ts.carry![s.index];
      case 'viaW': return ts.viaW!;
    }
  };
  const target = (tg: CellTarget): WT => {
    switch (tg.to) {
      case 'state': return slotOf(ctx, ts.out, tg.slot, cur);
      case 'dxg': return gateOf(ctx, ts.dxg!, t, tg.gate, H);
      case 'dhg': return gateOf(ctx, ts.dhg!, t, tg.gate, H);
      case 'carry': return ts.carry![tg.index];
    }
  };
  ctx.mapInto(cell.exprs, cell.sources.map(view), cell.targets.map(target));
}

// ---- the op ------------------------------------------------------------------

export const recurrent = implement(spec.recurrent, {
  forward: (ctx, ins, at) => {
    const { T, B, H, G, S } = checkShapes(ins, at);
    const { xg, whh, h0, c0, bhh, mask } = unpack(ins, at);
    const { mode, reverse } = at;
    const out = ctx.empty([S, T + 1, B, H]);
    const start = reverse ? T : 0;
    ctx.mapInto(c0 ? [x(0), x(1)] : [x(0)], c0 ? [h0, c0] : [h0], c0 ? [slotOf(ctx, out, 0, start), slotOf(ctx, out, 1, start)] : [slotOf(ctx, out, 0, start)]);
    const cell = forwardCell(mode, G, !!mask);
    if (ctx.backend.name === 'wasm') {
      const whhT = mT(ctx, whh);
      for (let s = 0; s < T; s++) {
        const t = reverse ? T - 1 - s : s;
        // Per-step temporaries go back to the pool at once; later steps reuse them.
        ctx.scoped(() => {
          const hg = matmulViews(ctx, slotOf(ctx, out, 0, indices(t, reverse).prev), whhT);
          stepCell(ctx, cell, { xg, hg, bhh, mask, out }, t, reverse, H);
        });
      }
      return out;
    }
    const inputs = [dense(ctx, xg), dense(ctx, whh), ...(bhh ? [dense(ctx, bhh)] : []), ...(mask ? [dense(ctx, mask)] : [])];
    ctx.run({ kind: 'scan', pass: 'forward', mode, T, B, H, G, reverse, masked: !!mask, ...cell, offsets: [...inputs, out].map((t) => t.offset) }, inputs, [out]);
    return out;
  },

  backward: (ctx, grad, ins, out, at) => {
    const { T, B, H, G } = checkShapes(ins, at);
    const { whh, mask } = unpack(ins, at);
    const { mode, reverse } = at;
    const dxg = ctx.empty([T, B, G * H]);
    // Gradient of h @ W_hh^T (+ b_hh): equal to dxg except the GRU's n gate, scaled there by r.
    const dhg = mode === 'gru' ? ctx.empty([T, B, G * H]) : dxg;
    const dh0 = ctx.empty([B, H]);
    const dc0 = mode === 'lstm' ? ctx.empty([B, H]) : null;
    const first = reverse ? T : 0;
    const cell = backwardCell(mode, G, !!mask);
    if (ctx.backend.name === 'wasm' || T === 0) {
      // What flows to the previous step's h and c other than through W_hh, updated in place.
      const carry = ctx.full([2, B, H], 0);
      const carries = [ctx.view(carry, [B, H], [H, 1], 0), ctx.view(carry, [B, H], [H, 1], B * H)];
      // dh of the step after, through W_hh.
      let viaW = ctx.full([B, H], 0).retain();
      for (let s = T - 1; s >= 0; s--) {
        const t = reverse ? T - 1 - s : s;
        const next = ctx.scoped(() => {
          stepCell(ctx, cell, { grad, out, mask, carry: carries, viaW, dxg, dhg }, t, reverse, H);
          return matmulViews(ctx, ctx.view(dhg, [B, G * H], [G * H, 1], t * B * G * H), whh).retain();
        });
        viaW.release();
        viaW = next;
      }
      // What reaches the initial state.
      ctx.mapInto([add(add(x(0), x(1)), x(2))], [slotOf(ctx, grad, 0, first), viaW, carries[0]], [dh0]);
      if (dc0) ctx.mapInto([add(x(0), x(1))], [slotOf(ctx, grad, 1, first), carries[1]], [dc0]);
      viaW.release();
    } else {
      const inputs = [dense(ctx, grad), out, dense(ctx, whh), ...(mask ? [dense(ctx, mask)] : [])];
      const outputs = [dxg, ...(mode === 'gru' ? [dhg] : []), dh0, ...(dc0 ? [dc0] : [])];
      ctx.run({ kind: 'scan', pass: 'backward', mode, T, B, H, G, reverse, masked: !!mask, ...cell, offsets: [...inputs, ...outputs].map((t) => t.offset) }, inputs, outputs);
    }
    // dW_hh = sum over steps of dhg_t^T h_prev_t: one matmul over all T*B rows. The h_prev of every
    // step form one contiguous block of slot 0 (out is the contiguous tensor forward allocated).
    const hPrevAll = ctx.view(out, [T * B, H], [H, 1], out.offset + (reverse ? B * H : 0));
    const dhgFlat = ctx.view(dhg, [T * B, G * H], [G * H, 1], 0);
    const dwhh = matmulViews(ctx, mT(ctx, dhgFlat), hPrevAll);
    const grads: (WT | null)[] = [dxg, dwhh, dh0];
    if (dc0) grads.push(dc0);
    if (mode === 'gru') grads.push(ctx.op('sum', [dhgFlat], { dims: [0], keepdim: false }));
    if (mask) grads.push(null);
    return grads;
  },
});
