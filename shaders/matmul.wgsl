// Tiled matmul: C[b] = A[b] @ B[b] for strided A [M, K] and B [K, N],
// C contiguous. Each 16x16 workgroup computes a 64x64 tile of C, each thread
// a 4x4 block, staging 64x16 panels of A and B in workgroup memory. Edges
// are bounds-checked, so any M, N, K works.
// Parameter words: [batch, M, N, K, aOff, aBatch, aRow, aCol, bOff, bBatch, bRow, bCol].
// The generator supplies the bindings (A's, B's, the epilogue's, C), load_a(index,
// batch, row, k) and load_b(index, batch, k, col) (A[index], or an elementwise
// prologue computed at those coordinates), and epilogue(acc, batch, row, col)
// (bias, activation, residual: applied at the store). The COL_SUMS placeholder is empty, or
// (a Linear's bias gradient beside its weight gradient) the first row block's threads
// writing the sums of B's columns they own through col_sums(first, count, step).
{{BINDINGS}}
{{EPILOGUE}}

const TILE = 64u;
const BK = 16u;
var<workgroup> As: array<array<f32, 64>, 16>; // [k][m]
var<workgroup> Bs: array<array<f32, 64>, 16>; // [k][n]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = u(1u); let N = u(2u); let K = u(3u);
  let batch = wid.z;
  let aBase = u(4u) + batch * u(5u); let aRow = u(6u); let aCol = u(7u);
  let bBase = u(8u) + batch * u(9u); let bRow = u(10u); let bCol = u(11u);
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let tid = lid.y * 16u + lid.x;
  {{COL_SUMS}}
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // 256 threads load 64x16 = 1024 elements of each panel, 4 each.
    for (var i = 0u; i < 4u; i++) {
      let e = tid + i * 256u;
      let r = e / BK; let kk = e % BK;
      let ar = row0 + r; let ak = k0 + kk;
      As[kk][r] = select(0.0, load_a(aBase + ar * aRow + ak * aCol, batch, ar, ak), ar < M && ak < K);
      let bk = k0 + e / TILE; let bc = col0 + e % TILE;
      Bs[e / TILE][e % TILE] = select(0.0, load_b(bBase + bk * bRow + bc * bCol, batch, bk, bc), bk < K && bc < N);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[kk][lid.y + i * 16u];
        b[i] = Bs[kk][lid.x + i * 16u];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y + i * 16u;
    if (r >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + lid.x + j * 16u;
      if (c < N) { C[(batch * M + r) * N + c] = epilogue(acc[i][j], batch, r, c); }
    }
  }
}
