// One recurrent layer in one direction (LSTM, GRU or Elman RNN) as a single
// op. The time loop runs inside it, so each step costs one matmul
// (h @ W_hh^T) and ONE fused elementwise kernel (every gate nonlinearity and
// the state update); backward mirrors that with one fused kernel and one
// matmul per step, then a single matmul for dW_hh over all steps. The input
// projection x @ W_ih^T + b for all steps is computed by the caller, in one
// matmul, and arrives as `xg`.
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
import { checkShapes, unpack } from '../../lib/ops/recurrent.js';
import { c, f, x, type Expr } from '../backend/kernel.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';
import { matmulViews, mT } from './matmul.js';
import { implement } from './op.js';

// ---- strided views ---------------------------------------------------------

/** [B, H] view of gate k at time t of a [T, B, G*H] tensor. */
const gateOf = (ctx: Ctx, a: WT, t: number, k: number, H: number) =>
  ctx.view(a, [a.shape[1], H], [a.strides[1], a.strides[2]], a.offset + t * a.strides[0] + k * H * a.strides[2]);
/** [B, H] view of gate k of a [B, G*H] matrix. */
const gateCols = (ctx: Ctx, a: WT, k: number, H: number) =>
  ctx.view(a, [a.shape[0], H], [a.strides[0], a.strides[1]], a.offset + k * H * a.strides[1]);
/** [H] view of gate k of a [G*H] bias (broadcast over the batch by the kernel). */
const biasOf = (ctx: Ctx, b: WT, k: number, H: number) => ctx.view(b, [H], [b.strides[0]], b.offset + k * H * b.strides[0]);
/** [B, H] view of slot k at time index i of an [S, T+1, B, H] tensor. */
const slotOf = (ctx: Ctx, a: WT, k: number, i: number) =>
  ctx.view(a, [a.shape[2], a.shape[3]], [a.strides[2], a.strides[3]], a.offset + k * a.strides[0] + i * a.strides[1]);
/** [B, 1] view of the mask at time t, broadcast over the hidden dim. */
const maskOf = (ctx: Ctx, m: WT, t: number) => ctx.view(m, [m.shape[1], 1], [m.strides[1], 0], m.offset + t * m.strides[0]);

/** Time indices of step t: where its previous state is read and its new state written. */
const indices = (t: number, reverse: boolean) => (reverse ? { prev: t + 1, cur: t } : { prev: t, cur: t + 1 });

/** Collects a kernel's inputs; each call returns the expression that reads the tensor. */
function inputList() {
  const list: WT[] = [];
  return { list, in: (t: WT): Expr => x(list.push(t) - 1) };
}

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

// ---- the op ------------------------------------------------------------------

export const recurrent = implement(spec.recurrent, {
  forward: (ctx, ins, at) => {
    const { T, B, H, G, S } = checkShapes(ins, at);
    const { xg, whh, h0, c0, bhh, mask } = unpack(ins, at);
    const { mode, reverse } = at;
    const out = ctx.empty([S, T + 1, B, H]);
    const start = reverse ? T : 0;
    ctx.mapInto(c0 ? [x(0), x(1)] : [x(0)], c0 ? [h0, c0] : [h0], c0 ? [slotOf(ctx, out, 0, start), slotOf(ctx, out, 1, start)] : [slotOf(ctx, out, 0, start)]);
    const whhT = mT(ctx, whh);
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const { prev, cur } = indices(t, reverse);
      // Per-step temporaries go back to the pool at once; later steps reuse them.
      ctx.scoped(() => {
        const hPrev = slotOf(ctx, out, 0, prev);
        const hg = matmulViews(ctx, hPrev, whhT);
        const k = inputList();
        const xs = Array.from({ length: G }, (_, g) => k.in(gateOf(ctx, xg, t, g, H)));
        const hs = Array.from({ length: G }, (_, g) => k.in(gateCols(ctx, hg, g, H)));
        const hp = k.in(hPrev);
        const m = mask ? k.in(maskOf(ctx, mask, t)) : null;
        // Past a sequence's end the state carries over unchanged.
        const keep = (next: Expr, old: Expr) => (m ? f('where', m, next, old) : next);
        let exprs: Expr[];
        if (mode === 'lstm') {
          const cp = k.in(slotOf(ctx, out, 1, prev));
          const [i, fg, g, o] = [sig(add(xs[0], hs[0])), sig(add(xs[1], hs[1])), tanh(add(xs[2], hs[2])), sig(add(xs[3], hs[3]))];
          const cNew = add(mul(fg, cp), mul(i, g));
          exprs = [keep(mul(o, tanh(cNew)), hp), keep(cNew, cp), i, fg, g, o];
        } else if (mode === 'gru') {
          const bs = Array.from({ length: G }, (_, g) => k.in(biasOf(ctx, bhh!, g, H)));
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
        ctx.mapInto(exprs, k.list, exprs.map((_, j) => slotOf(ctx, out, j, cur)));
      });
    }
    return out;
  },

  backward: (ctx, grad, ins, out, at) => {
    const { T, B, H, G } = checkShapes(ins, at);
    const { whh, mask } = unpack(ins, at);
    const { mode, reverse } = at;
    const dxg = ctx.empty([T, B, G * H]);
    // Gradient of h @ W_hh^T (+ b_hh): equal to dxg except the GRU's n gate, scaled there by r.
    const dhg = mode === 'gru' ? ctx.empty([T, B, G * H]) : dxg;
    // What flows to the previous step's h and c other than through W_hh, updated in place.
    const carry = ctx.full([2, B, H], 0);
    const carryH = ctx.view(carry, [B, H], [H, 1], 0);
    const carryC = ctx.view(carry, [B, H], [H, 1], B * H);
    // dh of the step after, through W_hh.
    let viaW = ctx.full([B, H], 0).retain();
    for (let s = T - 1; s >= 0; s--) {
      const t = reverse ? T - 1 - s : s;
      const { prev, cur } = indices(t, reverse);
      const next = ctx.scoped(() => {
        const k = inputList();
        const saved = (slot: number, i = cur) => k.in(slotOf(ctx, out, slot, i));
        const dh = add(add(k.in(slotOf(ctx, grad, 0, cur)), k.in(viaW)), k.in(carryH));
        const m = mask ? k.in(maskOf(ctx, mask, t)) : null;
        // Gradients reach a step's new state only where the mask let it through.
        const live = (e: Expr) => (m ? f('where', m, e, ZERO) : e);
        const pass = (e: Expr, old: Expr) => (m ? f('where', m, e, old) : e);
        const dxOut = Array.from({ length: G }, (_, g) => gateOf(ctx, dxg, t, g, H));
        let exprs: Expr[];
        let outs: WT[];
        if (mode === 'lstm') {
          const dcIn = add(k.in(slotOf(ctx, grad, 1, cur)), k.in(carryC));
          const [i, fg, g, o, cNew, cPrev] = [saved(2), saved(3), saved(4), saved(5), saved(1), saved(1, prev)];
          const tc = tanh(cNew);
          const dhNew = live(dh);
          const dcNew = live(add(dcIn, mul(dh, o, dtanh(tc))));
          exprs = [
            mul(dcNew, g, dsig(i)), mul(dcNew, cPrev, dsig(fg)), mul(dcNew, i, dtanh(g)), mul(dhNew, tc, dsig(o)),
            pass(ZERO, dh), pass(mul(dcNew, fg), dcIn),
          ];
          outs = [...dxOut, carryH, carryC];
        } else if (mode === 'gru') {
          const [r, z, n, hn, hPrev] = [saved(1), saved(2), saved(3), saved(4), saved(0, prev)];
          const dhNew = live(dh);
          const dnPre = mul(dhNew, sub(ONE, z), dtanh(n));
          const drPre = mul(dnPre, hn, dsig(r));
          const dzPre = mul(dhNew, sub(hPrev, n), dsig(z));
          exprs = [drPre, dzPre, dnPre, drPre, dzPre, mul(dnPre, r), pass(mul(dh, z), dh)];
          outs = [...dxOut, ...Array.from({ length: G }, (_, g) => gateOf(ctx, dhg, t, g, H)), carryH];
        } else {
          const h = saved(0);
          exprs = [mul(live(dh), mode === 'rnn_tanh' ? dtanh(h) : f('gt', h, ZERO)), pass(ZERO, dh)];
          outs = [...dxOut, carryH];
        }
        ctx.mapInto(exprs, k.list, outs);
        return matmulViews(ctx, ctx.view(dhg, [B, G * H], [G * H, 1], t * B * G * H), whh).retain();
      });
      viaW.release();
      viaW = next;
    }
    // What reaches the initial state.
    const first = reverse ? T : 0;
    const dh0 = ctx.empty([B, H]);
    const dc0 = ctx.empty([B, H]);
    const ends = [slotOf(ctx, grad, 0, first), viaW, carryH];
    if (mode === 'lstm') ctx.mapInto([add(add(x(0), x(1)), x(2)), add(x(3), x(4))], [...ends, slotOf(ctx, grad, 1, first), carryC], [dh0, dc0]);
    else ctx.mapInto([add(add(x(0), x(1)), x(2))], ends, [dh0]);
    viaW.release();
    // dW_hh = sum over steps of dhg_t^T h_prev_t: one matmul over all T*B rows. The h_prev of every
    // step form one contiguous block of slot 0 (out is the contiguous tensor forward allocated).
    const hPrevAll = ctx.view(out, [T * B, H], [H, 1], out.offset + (reverse ? B * H : 0));
    const dhgFlat = ctx.view(dhg, [T * B, G * H], [G * H, 1], 0);
    const dwhh = matmulViews(ctx, mT(ctx, dhgFlat), hPrevAll);
    const grads: (WT | null)[] = [dxg, dwhh, dh0];
    if (mode === 'lstm') grads.push(dc0);
    if (mode === 'gru') grads.push(ctx.op('sum', [dhgFlat], { dims: [0], keepdim: false }));
    if (mask) grads.push(null);
    return grads;
  },
});
