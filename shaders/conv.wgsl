// Direct 2-D convolution, three entry points (see ConvKernel in
// worker/backend/kernel.ts): forward, gradInput (the transposed
// convolution) and gradWeight. Every tensor is indexed in PyTorch's order
// through its four strides, so NCHW and NHWC need no copies. Like
// matmul_direct.wgsl, a thread accumulates a 4x4 block in four vec4
// registers straight from memory, with no workgroup memory, and lanes past
// an edge read a clamped, valid element and are never stored.
// Parameter words: [N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw,
// C/groups, O/groups, xOff, xN, xC, xH, xW, wOff, wO, wC, wKH, wKW,
// yOff, yN, yC, yH, yW, groups, threads].
@group(0) @binding(1) var<storage, read> In0: array<f32>;
@group(0) @binding(2) var<storage, read> In1: array<f32>;
{{BINDINGS}}
{{EPILOGUE}}

fn x_at(n: u32, c: u32, h: u32, w: u32) -> u32 { return u(17u) + n * u(18u) + c * u(19u) + h * u(20u) + w * u(21u); }
fn w_at(o: u32, c: u32, i: u32, j: u32) -> u32 { return u(22u) + o * u(23u) + c * u(24u) + i * u(25u) + j * u(26u); }
fn y_at(n: u32, o: u32, p: u32, q: u32) -> u32 { return u(27u) + n * u(28u) + o * u(29u) + p * u(30u) + q * u(31u); }

/** Four consecutive indices from `first`, the ones at or past `end` clamped to end - 1. */
fn lanes(first: u32, end: u32) -> vec4<u32> {
  return min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(end - 1u));
}

/** The input coordinate tap `i` of output coordinate `p` reads (may be out of range: negative or >= size). */
fn tap(p: vec4<u32>, i: u32, s: u32, d: u32, pad: u32) -> vec4<i32> {
  return vec4<i32>(p * s + vec4<u32>(i * d)) - vec4<i32>(i32(pad));
}

/**
 * Threads by [N, groups * ceil(O/groups / 4), OH, ceil(OW / 4)]: four output
 * channels (of one group) by four neighbouring output columns.
 */
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var t = flat_id(gid, nwg, 64u);
  if (t >= u(33u)) { return; }
  let H = u(2u); let W = u(3u); let OH = u(5u); let OW = u(6u); let KH = u(7u); let KW = u(8u);
  let sh = u(9u); let sw = u(10u); let dh = u(11u); let dw = u(12u); let ph = u(13u); let pw = u(14u);
  let cg = u(15u); let og = u(16u);
  let tilesQ = (OW + 3u) / 4u; let tilesO = (og + 3u) / 4u;
  let q0 = (t % tilesQ) * 4u; t /= tilesQ;
  let p = t % OH; t /= OH;
  let ot = t % (u(32u) * tilesO); let n = t / (u(32u) * tilesO);
  let g = ot / tilesO;
  let o0 = g * og + (ot % tilesO) * 4u;
  let o = lanes(o0, g * og + og);
  let q = lanes(q0, OW);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var ci = 0u; ci < cg; ci++) {
    let c = g * cg + ci;
    for (var i = 0u; i < KH; i++) {
      let iy = i32(p * sh + i * dh) - i32(ph);
      if (iy < 0 || iy >= i32(H)) { continue; }
      for (var j = 0u; j < KW; j++) {
        let ix = tap(q, j, sw, dw, pw);
        let inside = (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(W)));
        let cx = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(i32(W) - 1)));
        let xv = select(vec4<f32>(0.0), vec4<f32>(In0[x_at(n, c, u32(iy), cx.x)], In0[x_at(n, c, u32(iy), cx.y)], In0[x_at(n, c, u32(iy), cx.z)], In0[x_at(n, c, u32(iy), cx.w)]), inside);
        acc0 = fma(vec4<f32>(In1[w_at(o.x, ci, i, j)]), xv, acc0);
        acc1 = fma(vec4<f32>(In1[w_at(o.y, ci, i, j)]), xv, acc1);
        acc2 = fma(vec4<f32>(In1[w_at(o.z, ci, i, j)]), xv, acc2);
        acc3 = fma(vec4<f32>(In1[w_at(o.w, ci, i, j)]), xv, acc3);
      }
    }
  }
  let oEnd = g * og + og;
  store_y(n, o0, oEnd, p, q0, OW, acc0);
  store_y(n, o0 + 1u, oEnd, p, q0, OW, acc1);
  store_y(n, o0 + 2u, oEnd, p, q0, OW, acc2);
  store_y(n, o0 + 3u, oEnd, p, q0, OW, acc3);
}

fn store_y(n: u32, o: u32, oEnd: u32, p: u32, q0: u32, OW: u32, v: vec4<f32>) {
  if (o >= oEnd) { return; }
  Out[y_at(n, o, p, q0)] = epilogue(v.x, o);
  if (q0 + 1u < OW) { Out[y_at(n, o, p, q0 + 1u)] = epilogue(v.y, o); }
  if (q0 + 2u < OW) { Out[y_at(n, o, p, q0 + 2u)] = epilogue(v.z, o); }
  if (q0 + 3u < OW) { Out[y_at(n, o, p, q0 + 3u)] = epilogue(v.w, o); }
}

/** The output coordinate whose tap `i` reads input coordinate `v`, or -1 where none does. */
fn source(v: vec4<u32>, i: u32, s: u32, d: u32, pad: u32, size: u32) -> vec4<i32> {
  let t = vec4<i32>(v + vec4<u32>(pad)) - vec4<i32>(i32(i * d));
  let hit = (t >= vec4<i32>(0)) & (t % vec4<i32>(i32(s)) == vec4<i32>(0)) & (t / vec4<i32>(i32(s)) < vec4<i32>(i32(size)));
  return select(vec4<i32>(-1), t / vec4<i32>(i32(s)), hit);
}

/**
 * dx from dy (In0) and w (In1). Threads by [N, groups * ceil(C/groups / 4), H, ceil(W / 4)]:
 * four input channels (of one group) by four neighbouring input columns.
 */
@compute @workgroup_size(64)
fn gradInput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var t = flat_id(gid, nwg, 64u);
  if (t >= u(33u)) { return; }
  let H = u(2u); let W = u(3u); let OH = u(5u); let OW = u(6u); let KH = u(7u); let KW = u(8u);
  let sh = u(9u); let sw = u(10u); let dh = u(11u); let dw = u(12u); let ph = u(13u); let pw = u(14u);
  let cg = u(15u); let og = u(16u);
  let tilesW = (W + 3u) / 4u; let tilesC = (cg + 3u) / 4u;
  let w0 = (t % tilesW) * 4u; t /= tilesW;
  let h = t % H; t /= H;
  let ct = t % (u(32u) * tilesC); let n = t / (u(32u) * tilesC);
  let g = ct / tilesC;
  let ci0 = (ct % tilesC) * 4u;
  let ci = lanes(ci0, cg);
  let wv = lanes(w0, W);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var oi = 0u; oi < og; oi++) {
    let o = g * og + oi;
    for (var i = 0u; i < KH; i++) {
      let p = source(vec4<u32>(h), i, sh, dh, ph, OH).x;
      if (p < 0) { continue; }
      for (var j = 0u; j < KW; j++) {
        let q = source(wv, j, sw, dw, pw, OW);
        let hit = q >= vec4<i32>(0);
        let cq = vec4<u32>(max(q, vec4<i32>(0)));
        let pp = u32(p);
        let dy = select(vec4<f32>(0.0), vec4<f32>(In0[y_at(n, o, pp, cq.x)], In0[y_at(n, o, pp, cq.y)], In0[y_at(n, o, pp, cq.z)], In0[y_at(n, o, pp, cq.w)]), hit);
        acc0 = fma(vec4<f32>(In1[w_at(o, ci.x, i, j)]), dy, acc0);
        acc1 = fma(vec4<f32>(In1[w_at(o, ci.y, i, j)]), dy, acc1);
        acc2 = fma(vec4<f32>(In1[w_at(o, ci.z, i, j)]), dy, acc2);
        acc3 = fma(vec4<f32>(In1[w_at(o, ci.w, i, j)]), dy, acc3);
      }
    }
  }
  let c0 = g * cg + ci0;
  let cEnd = g * cg + cg;
  store_x(n, c0, cEnd, h, w0, W, acc0);
  store_x(n, c0 + 1u, cEnd, h, w0, W, acc1);
  store_x(n, c0 + 2u, cEnd, h, w0, W, acc2);
  store_x(n, c0 + 3u, cEnd, h, w0, W, acc3);
}

fn store_x(n: u32, c: u32, cEnd: u32, h: u32, w0: u32, W: u32, v: vec4<f32>) {
  if (c >= cEnd) { return; }
  Out[x_at(n, c, h, w0)] = v.x;
  if (w0 + 1u < W) { Out[x_at(n, c, h, w0 + 1u)] = v.y; }
  if (w0 + 2u < W) { Out[x_at(n, c, h, w0 + 2u)] = v.z; }
  if (w0 + 3u < W) { Out[x_at(n, c, h, w0 + 3u)] = v.w; }
}

/**
 * dw from x (In0) and dy (In1). Threads by [KH * KW, groups * ceil(O/groups / 4), ceil(C/groups / 4)]:
 * four output channels by four input channels of one group, at one kernel tap, summed over N, OH, OW.
 */
@compute @workgroup_size(64)
fn gradWeight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var t = flat_id(gid, nwg, 64u);
  if (t >= u(33u)) { return; }
  let N = u(0u); let H = u(2u); let W = u(3u); let OH = u(5u); let OW = u(6u); let KW = u(8u);
  let sh = u(9u); let sw = u(10u); let dh = u(11u); let dw = u(12u); let ph = u(13u); let pw = u(14u);
  let cg = u(15u); let og = u(16u);
  let tilesO = (og + 3u) / 4u; let tilesC = (cg + 3u) / 4u;
  let ci0 = (t % tilesC) * 4u; t /= tilesC;
  let ot = t % (u(32u) * tilesO); t /= u(32u) * tilesO;
  let i = t / KW; let j = t % KW;
  let g = ot / tilesO;
  let o0 = g * og + (ot % tilesO) * 4u;
  let o = lanes(o0, g * og + og);
  let c = vec4<u32>(g * cg) + lanes(ci0, cg);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var n = 0u; n < N; n++) {
    for (var p = 0u; p < OH; p++) {
      let iy = i32(p * sh + i * dh) - i32(ph);
      if (iy < 0 || iy >= i32(H)) { continue; }
      for (var q = 0u; q < OW; q++) {
        let ix = i32(q * sw + j * dw) - i32(pw);
        if (ix < 0 || ix >= i32(W)) { continue; }
        let y = u32(iy); let x = u32(ix);
        let xv = vec4<f32>(In0[x_at(n, c.x, y, x)], In0[x_at(n, c.y, y, x)], In0[x_at(n, c.z, y, x)], In0[x_at(n, c.w, y, x)]);
        acc0 = fma(vec4<f32>(In1[y_at(n, o.x, p, q)]), xv, acc0);
        acc1 = fma(vec4<f32>(In1[y_at(n, o.y, p, q)]), xv, acc1);
        acc2 = fma(vec4<f32>(In1[y_at(n, o.z, p, q)]), xv, acc2);
        acc3 = fma(vec4<f32>(In1[y_at(n, o.w, p, q)]), xv, acc3);
      }
    }
  }
  let oEnd = g * og + og;
  store_w(o0, oEnd, ci0, cg, i, j, acc0);
  store_w(o0 + 1u, oEnd, ci0, cg, i, j, acc1);
  store_w(o0 + 2u, oEnd, ci0, cg, i, j, acc2);
  store_w(o0 + 3u, oEnd, ci0, cg, i, j, acc3);
}

fn store_w(o: u32, oEnd: u32, ci0: u32, cg: u32, i: u32, j: u32, v: vec4<f32>) {
  if (o >= oEnd) { return; }
  Out[w_at(o, ci0, i, j)] = v.x;
  if (ci0 + 1u < cg) { Out[w_at(o, ci0 + 1u, i, j)] = v.y; }
  if (ci0 + 2u < cg) { Out[w_at(o, ci0 + 2u, i, j)] = v.z; }
  if (ci0 + 3u < cg) { Out[w_at(o, ci0 + 3u, i, j)] = v.w; }
}
