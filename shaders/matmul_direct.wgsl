// Matmul variant for software adapters (SwiftShader): no workgroup memory
// or barriers, which a CPU emulates at great cost, and no dynamically
// indexed private arrays, which it spills to memory. Each thread accumulates
// a 4x4 block of C in four vec4 registers straight from A and B.
// Same parameters, bindings, loads and epilogue as matmul.wgsl.
{{BINDINGS}}
{{EPILOGUE}}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = u(1u); let N = u(2u); let K = u(3u);
  let batch = wid.z;
  let aRow = u(6u); let aCol = u(7u);
  let bRow = u(10u); let bCol = u(11u);
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= M || c0 >= N) { return; }
  // Out-of-range rows and columns read a valid element and are never written.
  let r1 = min(r0 + 1u, M - 1u); let r2 = min(r0 + 2u, M - 1u); let r3 = min(r0 + 3u, M - 1u);
  let c1 = min(c0 + 1u, N - 1u); let c2 = min(c0 + 2u, N - 1u); let c3 = min(c0 + 3u, N - 1u);
  let aBase = u(4u) + batch * u(5u);
  let a0 = aBase + r0 * aRow;
  let a1 = aBase + r1 * aRow;
  let a2 = aBase + r2 * aRow;
  let a3 = aBase + r3 * aRow;
  let bBase = u(8u) + batch * u(9u);
  let b0 = bBase + c0 * bCol;
  let b1 = bBase + c1 * bCol;
  let b2 = bBase + c2 * bCol;
  let b3 = bBase + c3 * bCol;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let ak = k * aCol;
    let bk = k * bRow;
    let b = vec4<f32>(load_b(b0 + bk, batch, k, c0), load_b(b1 + bk, batch, k, c1), load_b(b2 + bk, batch, k, c2), load_b(b3 + bk, batch, k, c3));
    acc0 = fma(vec4<f32>(load_a(a0 + ak, batch, r0, k)), b, acc0);
    acc1 = fma(vec4<f32>(load_a(a1 + ak, batch, r1, k)), b, acc1);
    acc2 = fma(vec4<f32>(load_a(a2 + ak, batch, r2, k)), b, acc2);
    acc3 = fma(vec4<f32>(load_a(a3 + ak, batch, r3, k)), b, acc3);
  }
  let base = batch * M * N;
  store_row(base, batch, r0, c0, M, N, acc0);
  store_row(base, batch, r0 + 1u, c0, M, N, acc1);
  store_row(base, batch, r0 + 2u, c0, M, N, acc2);
  store_row(base, batch, r0 + 3u, c0, M, N, acc3);
}

fn store_row(base: u32, batch: u32, r: u32, c0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (r >= M) { return; }
  let o = base + r * N + c0;
  C[o] = epilogue(v.x, batch, r, c0);
  if (c0 + 1u < N) { C[o + 1u] = epilogue(v.y, batch, r, c0 + 1u); }
  if (c0 + 2u < N) { C[o + 2u] = epilogue(v.z, batch, r, c0 + 2u); }
  if (c0 + 3u < N) { C[o + 3u] = epilogue(v.w, batch, r, c0 + 3u); }
}
