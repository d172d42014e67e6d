// 2-D max and average pooling (see PoolKernel in worker/backend/kernel.ts):
// one thread per output element forward, one per input element backward,
// which gathers from the windows that cover it (no scatter, no races). Max
// backward recomputes each covering window's argmax from x instead of
// keeping indices from the forward: a 2x2 stride-2 pool reads 4 values per
// input element, and the step keeps no int32 buffer alive between passes.
// Tensors are indexed in PyTorch's order [N, C, H, W] through strides, so
// NCHW and NHWC need no copies. The codegen defines read_x and read_dy (the
// storages this mode binds) and fills MODE, the function main runs.
// Parameter words: [N, C, H, W, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw,
// endH, endW, countIncludePad, xOff, xN, xC, xH, xW, yOff, yN, yC, yH, yW,
// dxOff, dxN, dxC, dxH, dxW, threads, channelsInner, tiled].
// Tiled (grad modes, windows that do not overlap: stride >= the dilated
// window): one thread per window instead, writing every input element of
// its stride cell (the window's taps and the gaps, the last cell also what
// lies past the last window): SwiftShader's cost grows with the thread count
// more than with the work per thread, and a 2x2 pool has 4x fewer windows.
// Threads follow the layout of what they write: with channelsInner (NHWC),
// neighbouring threads take neighbouring channels of one pixel, so they read
// and write neighbouring memory and take the same branches; in PyTorch's
// order they would sit C floats apart.
{{BINDINGS}}

fn x_at(n: u32, c: u32, y: u32, z: u32) -> u32 { return u(17u) + n * u(18u) + c * u(19u) + y * u(20u) + z * u(21u); }
fn y_at(n: u32, c: u32, p: u32, q: u32) -> u32 { return u(22u) + n * u(23u) + c * u(24u) + p * u(25u) + q * u(26u); }
fn dx_at(n: u32, c: u32, y: u32, z: u32) -> u32 { return u(27u) + n * u(28u) + c * u(29u) + y * u(30u) + z * u(31u); }

/** Where tap t of window o starts along an axis (may lie in the padding: negative or past the image). */
fn tap(o: u32, t: u32, axis: u32) -> i32 { return i32(o * u(8u + axis) + t * u(10u + axis)) - i32(u(12u + axis)); }

struct Best { v: f32, t: i32 }

/** Window (p, q)'s first largest value and its tap i * KW + j (NaN wins, as in PyTorch); t = -1 when no tap lies in the image. */
fn window_max(n: u32, c: u32, p: u32, q: u32) -> Best {
  var best = Best(-sn_inf(), -1);
  let H = i32(u(2u)); let W = i32(u(3u)); let KW = u(7u);
  for (var i = 0u; i < u(6u); i++) {
    let y = tap(p, i, 0u);
    if ((y < 0) | (y >= H)) { continue; }
    for (var j = 0u; j < KW; j++) {
      let z = tap(q, j, 1u);
      if ((z < 0) | (z >= W)) { continue; }
      let v = read_x(x_at(n, c, u32(y), u32(z)));
      if ((best.t < 0) | (v > best.v) | sn_isnan(v)) { best = Best(v, i32(i * KW + j)); }
    }
  }
  return best;
}

/** Taps of window o along an axis that lie in [lo, hi). */
fn taps_within(o: u32, axis: u32, lo: i32, hi: i32) -> u32 {
  var count = 0u;
  for (var t = 0u; t < u(6u + axis); t++) {
    let v = tap(o, t, axis);
    count += select(0u, 1u, (v >= lo) & (v < hi));
  }
  return count;
}

/** Window (p, q)'s divisor: its taps in the padded image (countIncludePad) or in the image. */
fn divisor(p: u32, q: u32) -> f32 {
  let padded = u(16u) != 0u;
  let h = select(vec2<i32>(0, i32(u(2u))), vec2<i32>(-i32(u(12u)), i32(u(14u))), padded);
  let w = select(vec2<i32>(0, i32(u(3u))), vec2<i32>(-i32(u(13u)), i32(u(15u))), padded);
  return f32(taps_within(p, 0u, h.x, h.y) * taps_within(q, 1u, w.x, w.y));
}

/** Thread e's element (n, c, row, column) of an [N, C, rows, cols] tensor, in memory order. */
fn element(e: u32, rows: u32, cols: u32) -> vec4<u32> {
  let C = u(1u);
  if (u(33u) != 0u) { return vec4<u32>(e / (C * cols * rows), e % C, (e / (C * cols)) % rows, (e / C) % cols); }
  return vec4<u32>(e / (cols * rows * C), (e / (cols * rows)) % C, (e / cols) % rows, e % cols);
}

fn output_index(e: u32) -> vec4<u32> { return element(e, u(4u), u(5u)); }

fn pool_max(e: u32) {
  let o = output_index(e);
  Out[y_at(o.x, o.y, o.z, o.w)] = window_max(o.x, o.y, o.z, o.w).v;
}

fn pool_avg(e: u32) {
  let o = output_index(e);
  let H = i32(u(2u)); let W = i32(u(3u));
  var sum = 0.0;
  for (var i = 0u; i < u(6u); i++) {
    let y = tap(o.z, i, 0u);
    if ((y < 0) | (y >= H)) { continue; }
    for (var j = 0u; j < u(7u); j++) {
      let z = tap(o.w, j, 1u);
      if ((z >= 0) & (z < W)) { sum += read_x(x_at(o.x, o.y, u32(y), u32(z))); }
    }
  }
  Out[y_at(o.x, o.y, o.z, o.w)] = sum / divisor(o.z, o.w);
}

/** Input element e's gradient: over the taps (i, j) whose window covers it, what `gather` takes from that window. */
fn grad(e: u32, from_max: bool) {
  let H = u(2u); let W = u(3u); let KW = u(7u);
  let at = element(e, H, W);
  let n = at.x; let c = at.y; let y = at.z; let z = at.w;
  var acc = 0.0;
  for (var i = 0u; i < u(6u); i++) {
    // The window whose tap i reads row y: o * sh = y + ph - i * dh.
    let ty = i32(y + u(12u)) - i32(i * u(10u));
    let p = u32(max(ty, 0)) / u(8u);
    if ((ty < 0) | (p * u(8u) != u32(ty)) | (p >= u(4u))) { continue; }
    for (var j = 0u; j < KW; j++) {
      let tz = i32(z + u(13u)) - i32(j * u(11u));
      let q = u32(max(tz, 0)) / u(9u);
      if ((tz < 0) | (q * u(9u) != u32(tz)) | (q >= u(5u))) { continue; }
      let g = read_dy(y_at(n, c, p, q));
      if (from_max) {
        if (window_max(n, c, p, q).t == i32(i * KW + j)) { acc += g; }
      } else {
        acc += g / divisor(p, q);
      }
    }
  }
  Out[dx_at(n, c, y, z)] = acc;
}

/** The rows (or columns) [begin, end) of the image that window o's stride cell holds along an axis. */
fn cell(o: u32, axis: u32) -> vec2<i32> {
  let size = i32(u(2u + axis));
  let begin = i32(o * u(8u + axis)) - i32(u(12u + axis));
  let end = select(begin + i32(u(8u + axis)), size, o + 1u == u(4u + axis));
  return vec2<i32>(max(begin, 0), min(end, size));
}

/** Window (p, q)'s gradient into its stride cell: what `grad` gathers, when each element lies in one window at most. */
fn grad_cell(e: u32, from_max: bool) {
  let o = output_index(e);
  let n = o.x; let c = o.y; let p = o.z; let q = o.w;
  let g = read_dy(y_at(n, c, p, q));
  var best = -1;
  var share = 0.0;
  if (from_max) { best = window_max(n, c, p, q).t; } else { share = g / divisor(p, q); }
  let rows = cell(p, 0u); let cols = cell(q, 1u);
  let y0 = tap(p, 0u, 0u); let z0 = tap(q, 0u, 1u);
  for (var y = rows.x; y < rows.y; y++) {
    // The tap this row is, if any: (y - y0) / dh when it divides and lies within the window.
    let dy = u32(y - y0);
    let i = dy / u(10u);
    let row_tap = (i * u(10u) == dy) & (i < u(6u));
    for (var z = cols.x; z < cols.y; z++) {
      let dz = u32(z - z0);
      let j = dz / u(11u);
      let is_tap = row_tap & (j * u(11u) == dz) & (j < u(7u));
      let v = select(share, select(0.0, g, i32(i * u(7u) + j) == best), from_max);
      Out[dx_at(n, c, u32(y), u32(z))] = select(0.0, v, is_tap);
    }
  }
}

fn pool_maxGrad(e: u32) { if (u(34u) != 0u) { grad_cell(e, true); } else { grad(e, true); } }
fn pool_avgGrad(e: u32) { if (u(34u) != 0u) { grad_cell(e, false); } else { grad(e, false); } }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_id(gid, nwg, 256u);
  if (e >= u(32u)) { return; }
  pool_{{MODE}}(e);
}
