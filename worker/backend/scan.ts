// The recurrent time loop (ScanKernel) over plain arrays: the cpu backend's
// oracle for the WebGPU scan. Each step's recurrent matmul for all rows goes
// through a GEMM callback, then the cell's expressions run as compiled
// closures per unit. (The wasm backend never receives scan kernels: there the
// recurrent op runs its steps as ops, see worker/ops/recurrent.ts.)

import type { ScanKernel } from './kernel.js';

type Eval = (vals: number[]) => number;

/** The position of [slot, i, b, j] in an [S, T+1, B, H] buffer at `base`, and of [t, b, col] in a [T, B, G*H] one. */
export const scanIndex = ({ T, B, H, G }: ScanKernel) => ({
  state: (base: number, slot: number, i: number, b: number, j: number) => base + ((slot * (T + 1) + i) * B + b) * H + j,
  gates: (base: number, t: number, b: number, col: number) => base + (t * B + b) * G * H + col,
});

/** A strided matrix operand in one of the kernel's buffers (index into [...inputs, ...outputs]). */
export interface Operand {
  buffer: number;
  offset: number;
  rowStride: number;
  colStride: number;
}

/** C [m, n] = A [m, k] @ B [k, n]; returns C (valid until the next call). Each backend brings its GEMM. */
export type ScanGemm = (a: Operand, b: Operand, m: number, n: number, k: number) => Float32Array;

/** A plain-loop ScanGemm over the kernel's buffers (the cpu backend's). */
export function loopGemm(buffers: () => Float32Array[]): ScanGemm {
  let c = new Float32Array(0);
  return (a, b, m, n, k) => {
    if (c.length < m * n) c = new Float32Array(m * n);
    const bufs = buffers();
    const [A, B] = [bufs[a.buffer], bufs[b.buffer]];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += A[a.offset + i * a.rowStride + p * a.colStride] * B[b.offset + p * b.rowStride + j * b.colStride];
        c[i * n + j] = acc;
      }
    }
    return c;
  };
}

/** An element source or destination: [array, base, row (b) stride, unit (j) stride]. */
type Reader = [Float32Array, number, number, number];

/**
 * One step's cells, every row and unit. All results of a unit are computed before any is
 * stored: a carry may be read and written by the same unit.
 */
function cells(B: number, H: number, fns: Eval[], vals: number[], readers: Reader[], writers: Reader[]) {
  const results = new Array<number>(fns.length).fill(0);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      for (let n = 0; n < readers.length; n++) {
        const [a, base, rs, cs] = readers[n];
        vals[n] = a[base + b * rs + j * cs];
      }
      for (let n = 0; n < fns.length; n++) results[n] = fns[n](vals);
      for (let n = 0; n < writers.length; n++) {
        const [a, base, rs, cs] = writers[n];
        a[base + b * rs + j * cs] = results[n];
      }
    }
  }
}

/**
 * Runs the kernel: per step, the recurrent matmul of every row at once through `gemm`, then the
 * cell per unit. `fns` are the cell's expressions compiled (float32 rounding as the backend's
 * maps do); `buffers()` gives the kernel's buffers, inputs then outputs, afresh after each GEMM
 * (the wasm heap may grow under it).
 */
export function scan(k: ScanKernel, fns: Eval[], buffers: () => Float32Array[], gemm: ScanGemm) {
  const { T, B, H, G, reverse, sources, targets } = k;
  const GH = G * H;
  const { state, gates } = scanIndex(k);
  const o = k.offsets;
  const vals = new Array<number>(sources.length).fill(0);
  const f32 = Math.fround;
  const nIn = k.pass === 'forward' ? 2 + (k.mode === 'gru' ? 1 : 0) + (k.masked ? 1 : 0) : 3 + (k.masked ? 1 : 0);
  if (k.pass === 'forward') {
    const [oXg, oW, oB] = o;
    const oM = o[nIn - 1];
    const oOut = o[nIn];
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const [prev, cur] = reverse ? [t + 1, t] : [t, t + 1];
      // h_prev [B, H] @ whh^T [H, G*H] for every row.
      const hg = gemm({ buffer: nIn, offset: state(oOut, 0, prev, 0, 0), rowStride: H, colStride: 1 }, { buffer: 1, offset: oW, rowStride: 1, colStride: H }, B, GH, H);
      const bufs = buffers();
      // Each source as array[base + b * rowStride + j * colStride] at this step.
      const readers = sources.map((src): Reader => {
        switch (src.from) {
          case 'xg': return [bufs[0], gates(oXg, t, 0, src.gate * H), GH, 1];
          case 'hg': return [hg, src.gate * H, GH, 1];
          case 'bias': return [bufs[2], oB + src.gate * H, 0, 1];
          case 'mask': return [bufs[nIn - 1], oM + t * B, 1, 0];
          case 'state': return [bufs[nIn], state(oOut, src.slot, src.prev ? prev : cur, 0, 0), H, 1];
          default: throw new Error(`scan: source '${src.from}' in a forward pass`);
        }
      });
      const writers = targets.map((tg): Reader => {
        if (tg.to !== 'state') throw new Error(`scan: target '${tg.to}' in a forward pass`);
        return [bufs[nIn], state(oOut, tg.slot, cur, 0, 0), H, 1];
      });
      cells(B, H, fns, vals, readers, writers);
    }
    return;
  }
  const gru = k.mode === 'gru';
  const [oG, oS, oW, oM] = o;
  // Outputs: dxg, dhg (gru), dh0, dc0 (lstm), as buffer indices.
  const dxg = nIn;
  const dhg = gru ? nIn + 1 : dxg;
  const dh0 = nIn + (gru ? 2 : 1);
  const dc0 = k.mode === 'lstm' ? nIn + 2 : -1;
  const carry = [new Float32Array(B * H), new Float32Array(B * H)];
  const via = new Float32Array(B * H);
  for (let s = T - 1; s >= 0; s--) {
    const t = reverse ? T - 1 - s : s;
    const [prev, cur] = reverse ? [t + 1, t] : [t, t + 1];
    const bufs = buffers();
    const readers = sources.map((src): Reader => {
      switch (src.from) {
        case 'grad': return [bufs[0], state(oG, src.slot, cur, 0, 0), H, 1];
        case 'state': return [bufs[1], state(oS, src.slot, src.prev ? prev : cur, 0, 0), H, 1];
        case 'carry': return [carry[src.index], 0, H, 1];
        case 'viaW': return [via, 0, H, 1];
        case 'mask': return [bufs[3], oM + t * B, 1, 0];
        default: throw new Error(`scan: source '${src.from}' in a backward pass`);
      }
    });
    const writers = targets.map((tg): Reader => {
      switch (tg.to) {
        case 'dxg': return [bufs[dxg], gates(o[dxg], t, 0, tg.gate * H), GH, 1];
        case 'dhg': return [bufs[dhg], gates(o[dhg], t, 0, tg.gate * H), GH, 1];
        case 'carry': return [carry[tg.index], 0, H, 1];
        default: throw new Error(`scan: target '${tg.to}' in a backward pass`);
      }
    });
    cells(B, H, fns, vals, readers, writers);
    // The gradient reaching the previous step's h through W_hh: this step's rows of dhg [B, G*H] @ whh [G*H, H].
    via.set(gemm({ buffer: dhg, offset: gates(o[dhg], t, 0, 0), rowStride: GH, colStride: 1 }, { buffer: 2, offset: oW, rowStride: H, colStride: 1 }, B, H, GH).subarray(0, B * H));
  }
  const bufs = buffers();
  const grad = bufs[0];
  const first = reverse ? T : 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const bj = b * H + j;
      bufs[dh0][o[dh0] + bj] = f32(f32(grad[state(oG, 0, first, b, j)] + via[bj]) + carry[0][bj]);
      if (dc0 >= 0) bufs[dc0][o[dc0] + bj] = f32(grad[state(oG, 1, first, b, j)] + carry[1][bj]);
    }
  }
}
