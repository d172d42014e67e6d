// Matmul variant for software adapters (SwiftShader): no workgroup memory
// or barriers, which a CPU emulates at great cost, and no dynamically
// indexed private arrays, which it spills to memory. Each thread accumulates
// a block of C (8x8 or 4x4, one vec4 register per row and 4 columns)
// straight from A and B; the generator writes the block's statements (its
// setup, one k's step, its stores). SwiftShader emulates every storage load
// as a bounds-checked gather, so loads, not multiply-adds, bound the loop:
// a larger block does more of them per load, and K is unrolled by 4.
// Same parameters, bindings, loads, epilogue and column sums as matmul.wgsl.
{{BINDINGS}}
{{EPILOGUE}}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = u(1u); let N = u(2u); let K = u(3u);
  let batch = wid.z;
  let aRow = u(6u); let aCol = u(7u);
  let bRow = u(10u); let bCol = u(11u);
  let r0 = gid.y * {{ROWS}}u;
  let c0 = gid.x * {{COLS}}u;
  if (r0 >= M || c0 >= N) { return; }
  {{COL_SUMS}}
  let aBase = u(4u) + batch * u(5u);
  let bBase = u(8u) + batch * u(9u);
  // Out-of-range rows and columns read a valid element and are never written.
{{SETUP}}
  let K4 = K & ~3u;
  for (var k0 = 0u; k0 < K4; k0 += 4u) {
    { let k = k0;
{{STEP}}
    }
    { let k = k0 + 1u;
{{STEP}}
    }
    { let k = k0 + 2u;
{{STEP}}
    }
    { let k = k0 + 3u;
{{STEP}}
    }
  }
  for (var k = K4; k < K; k++) {
{{STEP}}
  }
  let base = batch * M * N;
{{STORE}}
}

fn store_row(base: u32, batch: u32, r: u32, c0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (r >= M || c0 >= N) { return; }
  let o = base + r * N + c0;
  C[o] = epilogue(v.x, batch, r, c0);
  if (c0 + 1u < N) { C[o + 1u] = epilogue(v.y, batch, r, c0 + 1u); }
  if (c0 + 2u < N) { C[o + 2u] = epilogue(v.z, batch, r, c0 + 2u); }
  if (c0 + 3u < N) { C[o + 3u] = epilogue(v.w, batch, r, c0 + 3u); }
}
