// Matmul variant for software adapters (SwiftShader): no workgroup memory
// or barriers, which a CPU emulates at great cost; each thread accumulates a
// 4x4 block of C straight from A and B, whose rows stay hot in CPU caches.
// Same parameters and semantics as matmul.wgsl.
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = u(1u); let N = u(2u); let K = u(3u);
  let batch = wid.z;
  let aBase = u(4u) + batch * u(5u); let aRow = u(6u); let aCol = u(7u);
  let bBase = u(8u) + batch * u(9u); let bRow = u(10u); let bCol = u(11u);
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= M || c0 >= N) { return; }
  // Out-of-range rows and columns read a valid element and are never written.
  var ra: array<u32, 4>;
  var cb: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ra[i] = aBase + min(r0 + i, M - 1u) * aRow;
    cb[i] = bBase + min(c0 + i, N - 1u) * bCol;
  }
  var acc: array<array<f32, 4>, 4>;
  for (var k = 0u; k < K; k++) {
    let ak = k * aCol;
    let bk = k * bRow;
    var b: array<f32, 4>;
    for (var j = 0u; j < 4u; j++) { b[j] = B[cb[j] + bk]; }
    for (var i = 0u; i < 4u; i++) {
      let a = A[ra[i] + ak];
      for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a, b[j], acc[i][j]); }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r >= M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + j;
      if (c < N) { C[(batch * M + r) * N + c] = acc[i][j]; }
    }
  }
}
