// Convolution on the wasm backend, lowered to its GEMM: per group, the
// window matrix col [(n, p, q), (c, i, j)] (im2col, zeros in the padding)
// times the packed weight [(c, i, j), o]. Grad input is dy times the weight
// transposed, scattered back through the windows (col2im); grad weight is
// col transposed times dy. Packing and scattering are plain loops over the
// strided views, so either layout works; the GEMMs carry the work.

import type { Activation } from '../../../lib/ops/activations.js';
import type { ConvKernel, MatmulKernel, View } from '../kernel.js';

export interface ConvHost {
  alloc(floats: number): number;
  free(ptr: number, floats: number): void;
  /** The heap as floats (fetch again after alloc: memory may grow). */
  f32(): Float32Array;
  /** C = act(A @ B + bias) with pointers into the heap; C contiguous [m, n]. */
  gemm(k: MatmulKernel, a: number, b: number, bias: number, activation: Activation | null, c: number): void;
}

const at = (v: View, a: number, b: number, c: number, d: number) => v.offset + a * v.strides[0] + b * v.strides[1] + c * v.strides[2] + d * v.strides[3];

/** A [rows, cols] row-major matrix read plainly, or transposed, as a MatmulKernel operand. */
const operand = (cols: number, transposed = false) =>
  transposed ? { offset: 0, batchStride: 0, rowStride: 1, colStride: cols } : { offset: 0, batchStride: 0, rowStride: cols, colStride: 1 };

export function convWasm(host: ConvHost, k: ConvKernel, inputs: number[], output: number) {
  const [N, C, , , O, OH, OW, KH, KW] = k.dims;
  const cg = C / k.groups;
  const og = O / k.groups;
  const M = N * OH * OW;
  const K = cg * KH * KW;
  const heap = (ptr: number) => ptr >> 2;
  const out = heap(output);
  if (M === 0) {
    // An empty batch: grad weight sums nothing (forward and grad input have no elements).
    if (k.mode === 'gradWeight') zero(host.f32(), out, k.w, [O, cg, KH, KW]);
    return;
  }
  const gemm = (m: number, n: number, kk: number, a: number, aOp: MatmulKernel['a'], b: number, bOp: MatmulKernel['b'], c: number, bias = 0) =>
    host.gemm({ kind: 'matmul', batch: 1, m, n, k: kk, a: aOp, b: bOp }, a, b, bias, k.mode === 'forward' ? k.activation ?? null : null, c);
  const col = host.alloc(M * K);
  const wp = host.alloc(K * og);
  const yp = host.alloc(M * og);
  try {
    for (let g = 0; g < k.groups; g++) {
      if (k.mode === 'forward') {
        im2col(host.f32(), heap(inputs[0]), k, g, col);
        packWeight(host.f32(), heap(inputs[1]), k, g, wp);
        gemm(M, og, K, col, operand(K), wp, operand(og), yp, k.bias ? inputs[2] + g * og * 4 : 0);
        unpackY(host.f32(), yp, out, k.y, k, g);
      } else if (k.mode === 'gradInput') {
        packY(host.f32(), heap(inputs[0]), k.y, k, g, yp);
        packWeight(host.f32(), heap(inputs[1]), k, g, wp);
        // dcol [M, K] = dy [M, og] @ wp^T ([og, K]).
        gemm(M, K, og, yp, operand(og), wp, operand(og, true), col);
        col2im(host.f32(), col, out, k, g);
      } else {
        im2col(host.f32(), heap(inputs[0]), k, g, col);
        packY(host.f32(), heap(inputs[1]), k.y, k, g, yp);
        // dw [K, og] = col^T ([K, M]) @ dy [M, og].
        gemm(K, og, M, col, operand(K, true), yp, operand(og), wp);
        unpackWeight(host.f32(), wp, out, k, g);
      }
    }
  } finally {
    host.free(col, M * K);
    host.free(wp, K * og);
    host.free(yp, M * og);
  }
}

function zero(f: Float32Array, out: number, v: View, dims: number[]) {
  for (let a = 0; a < dims[0]; a++) for (let b = 0; b < dims[1]; b++) for (let c = 0; c < dims[2]; c++) for (let d = 0; d < dims[3]; d++) f[out + at(v, a, b, c, d)] = 0;
}

/** col [(n, p, q), (ci, i, j)] of group g, zeros where a tap falls in the padding. */
function im2col(f: Float32Array, x: number, k: ConvKernel, g: number, colPtr: number) {
  const [N, C, H, W, , OH, OW, KH, KW] = k.dims;
  const cg = C / k.groups;
  const [sxN, sxC, sxH, sxW] = k.x.strides;
  let r = colPtr >> 2;
  for (let n = 0; n < N; n++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
    for (let ci = 0; ci < cg; ci++) {
      const plane = x + k.x.offset + n * sxN + (g * cg + ci) * sxC;
      for (let i = 0; i < KH; i++) {
        const iy = p * k.stride[0] + i * k.dilation[0] - k.pad[0];
        const rowOk = iy >= 0 && iy < H;
        for (let j = 0; j < KW; j++) {
          const ix = q * k.stride[1] + j * k.dilation[1] - k.pad[1];
          f[r++] = rowOk && ix >= 0 && ix < W ? f[plane + iy * sxH + ix * sxW] : 0;
        }
      }
    }
  }
}

/** dx of group g = the sum, over every window that read a pixel, of dcol there (dx's group channels are written whole). */
function col2im(f: Float32Array, colPtr: number, dx: number, k: ConvKernel, g: number) {
  const [N, C, H, W, , OH, OW, KH, KW] = k.dims;
  const cg = C / k.groups;
  for (let n = 0; n < N; n++) for (let ci = 0; ci < cg; ci++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) f[dx + at(k.x, n, g * cg + ci, h, w)] = 0;
  let r = colPtr >> 2;
  for (let n = 0; n < N; n++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
    for (let ci = 0; ci < cg; ci++) {
      for (let i = 0; i < KH; i++) {
        const iy = p * k.stride[0] + i * k.dilation[0] - k.pad[0];
        for (let j = 0; j < KW; j++, r++) {
          const ix = q * k.stride[1] + j * k.dilation[1] - k.pad[1];
          if (iy >= 0 && iy < H && ix >= 0 && ix < W) f[dx + at(k.x, n, g * cg + ci, iy, ix)] += f[r];
        }
      }
    }
  }
}

/** The weight of group g as [(ci, i, j), o] contiguous. */
function packWeight(f: Float32Array, w: number, k: ConvKernel, g: number, wpPtr: number) {
  const [, C, , , O, , , KH, KW] = k.dims;
  const cg = C / k.groups;
  const og = O / k.groups;
  let r = wpPtr >> 2;
  for (let ci = 0; ci < cg; ci++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
    for (let o = 0; o < og; o++) f[r++] = f[w + at(k.w, g * og + o, ci, i, j)];
  }
}

function unpackWeight(f: Float32Array, wpPtr: number, dw: number, k: ConvKernel, g: number) {
  const [, C, , , O, , , KH, KW] = k.dims;
  const cg = C / k.groups;
  const og = O / k.groups;
  let r = wpPtr >> 2;
  for (let ci = 0; ci < cg; ci++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
    for (let o = 0; o < og; o++) f[dw + at(k.w, g * og + o, ci, i, j)] = f[r++];
  }
}

/** y's (or dy's) channels of group g as [(n, p, q), o] contiguous. */
function packY(f: Float32Array, y: number, v: View, k: ConvKernel, g: number, ypPtr: number) {
  const [N, , , , O, OH, OW] = k.dims;
  const og = O / k.groups;
  let r = ypPtr >> 2;
  for (let n = 0; n < N; n++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
    for (let o = 0; o < og; o++) f[r++] = f[y + at(v, n, g * og + o, p, q)];
  }
}

function unpackY(f: Float32Array, ypPtr: number, y: number, v: View, k: ConvKernel, g: number) {
  const [N, , , , O, OH, OW] = k.dims;
  const og = O / k.groups;
  let r = ypPtr >> 2;
  for (let n = 0; n < N; n++) for (let p = 0; p < OH; p++) for (let q = 0; q < OW; q++) {
    for (let o = 0; o < og; o++) f[y + at(v, n, g * og + o, p, q)] = f[r++];
  }
}
