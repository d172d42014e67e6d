// 2-D convolution as an implicit GEMM (see ConvKernel in worker/backend/kernel.ts):
// each mode is a matrix product C [M, NC] = A [M, K] B [K, NC] per group, whose
// operands are read straight from the tensors (no im2col buffer):
// - forward:    rows (n, p, q), columns o, sum over (c, i, j): A = x's windows, B = w
// - gradInput:  rows (n, h, w), columns c, sum over (o, i, j): A = dy at the output
//   pixels whose tap (i, j) reads (h, w), B = w
// - gradWeight: rows o, columns (c, i, j), sum over (n, p, q): A = dy, B = x's windows
// Every tensor is indexed in PyTorch's order through its strides, so NCHW and
// NHWC need no copies. The codegen fills MODE with the mode's name, which picks
// its functions below.
// Two entry points share them: `tiled` (64x64 tiles of C per 16x16
// workgroup, 16-deep panels of A and B in workgroup memory, 4x4 per thread:
// for GPUs) and `direct` (each thread a block of C straight from memory,
// no workgroup memory or barriers, which a CPU emulates at great cost: for
// software adapters). Rows and columns past an edge read a clamped row or
// column and are never stored; the K tail of a tile and taps in the padding
// read as zeros (a masked load's address may lie outside its buffer, which
// WGSL's bounds clamping makes harmless).
// Parameter words: [N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw,
// C/groups, O/groups, xOff, xN, xC, xH, xW, wOff, wO, wC, wKH, wKW,
// yOff, yN, yC, yH, yW, groups, chunks, chunkStride]. Workgroup z is the
// group, plus groups times (the slab of row tiles when these overflow the y
// dimension) times chunks plus the chunk.
// Chunks (grad weight of a layer with few output tiles, where a handful of
// threads would each run the whole sum): the taps are cut into `chunks`
// ranges, each summed by its own workgroups into its own copy of dw,
// chunkStride floats after the last; the op then sums the copies.
@group(0) @binding(1) var<storage, read> In0: array<f32>;
@group(0) @binding(2) var<storage, read> In1: array<f32>;
{{BINDINGS}}
{{EPILOGUE}}

struct Geo {
  N: u32, C: u32, H: i32, W: i32, O: u32, OH: u32, OW: u32, KH: u32, KW: u32,
  sh: u32, sw: u32, dh: u32, dw: u32, ph: u32, pw: u32, cg: u32, og: u32,
  /** Offset and [N, C, H, W] strides of x, of w ([O, C/g, KH, KW]) and of y ([N, O, OH, OW]). */
  xo: u32, xs: vec4<u32>, wo: u32, ws: vec4<u32>, yo: u32, ys: vec4<u32>,
  /** The group and the chunk of taps this workgroup computes. */
  g: u32, chunk: u32,
}

fn geometry(group: u32, chunk: u32) -> Geo {
  return Geo(u(0u), u(1u), i32(u(2u)), i32(u(3u)), u(4u), u(5u), u(6u), u(7u), u(8u),
    u(9u), u(10u), u(11u), u(12u), u(13u), u(14u), u(15u), u(16u),
    u(17u), vec4<u32>(u(18u), u(19u), u(20u), u(21u)),
    u(22u), vec4<u32>(u(23u), u(24u), u(25u), u(26u)),
    u(27u), vec4<u32>(u(28u), u(29u), u(30u), u(31u)), group, chunk);
}

/** Workgroup z as [group, slab of row tiles, chunk]. */
fn split_z(z: u32) -> vec3<u32> { let rest = z / u(32u); return vec3<u32>(z % u(32u), rest / u(33u), rest % u(33u)); }

/** The chunk's taps [begin, end) of all `taps`. */
fn tap_range(G: Geo, taps: u32) -> vec2<u32> {
  let per = (taps + u(33u) - 1u) / u(33u);
  let begin = min(taps, G.chunk * per);
  return vec2<u32>(begin, min(taps, begin + per));
}

/** A row of A or a column of B, resolved once: a base offset and where its window starts. */
struct Line { base: u32, y: i32, x: i32 }

/** Where a row's (or column's) elements of one tap start, and whether they exist (false: zeros, in the padding). */
struct At { addr: u32, ok: bool }

/** At `addr` if (y, x) lies in the [h, w] image, else (zeros) at `base`. */
fn at_pixel(base: u32, y: i32, x: i32, h: i32, w: i32, addr: u32) -> At {
  let ok = (y >= 0) & (y < h) & (x >= 0) & (x < w);
  return At(select(base, addr, ok), ok);
}

// Conditions use & and |, not && and ||: short-circuits become branches,
// which multiplied SwiftShader's compile time.
// Each mode's sum runs over K = taps x run: for each tap (outer), a run of
// elements (inner) that sit a fixed step apart in A and in B, so the inner
// loop only adds strides. `_taps` gives [taps, run], `_steps` the two strides,
// `_a` and `_b` where a row's and a column's run starts at a tap, `_in`
// whether element l of a column's run lies inside the image, and `_A`, `_B`
// read the two operands.

// forward: [M, NC] = [N*OH*OW, O/g]; taps (i, j), runs over c.
fn forward_size(G: Geo) -> vec2<u32> { return vec2<u32>(G.N * G.OH * G.OW, G.og); }
fn forward_taps(G: Geo) -> vec2<u32> { return vec2<u32>(G.KH * G.KW, G.cg); }
fn forward_steps(G: Geo) -> vec2<u32> { return vec2<u32>(G.xs.y, G.ws.y); }
fn forward_row(G: Geo, m: u32) -> Line {
  let n = m / (G.OH * G.OW); let p = (m / G.OW) % G.OH; let q = m % G.OW;
  return Line(G.xo + n * G.xs.x + G.g * G.cg * G.xs.y, i32(p * G.sh) - i32(G.ph), i32(q * G.sw) - i32(G.pw));
}
fn forward_col(G: Geo, o: u32) -> Line { return Line(G.wo + (G.g * G.og + o) * G.ws.x, 0, 0); }
fn forward_a(G: Geo, r: Line, t: u32) -> At {
  let y = r.y + i32(t / G.KW * G.dh); let x = r.x + i32(t % G.KW * G.dw);
  return at_pixel(r.base, y, x, G.H, G.W, r.base + u32(y) * G.xs.z + u32(x) * G.xs.w);
}
fn forward_b(G: Geo, c: Line, t: u32) -> At { return At(c.base + t / G.KW * G.ws.z + t % G.KW * G.ws.w, true); }
fn forward_in(G: Geo, c: Line, l: u32) -> bool { return true; }
fn forward_A(i: u32) -> f32 { return In0[i]; }
fn forward_B(i: u32) -> f32 { return In1[i]; }
fn forward_store(G: Geo, m: u32, col: u32, v: f32) {
  let n = m / (G.OH * G.OW); let p = (m / G.OW) % G.OH; let q = m % G.OW;
  let o = G.g * G.og + col;
  Out[G.yo + n * G.ys.x + o * G.ys.y + p * G.ys.z + q * G.ys.w] = epilogue(v, o);
}

// gradInput (In0 = dy, In1 = w): [M, NC] = [N*H*W, C/g]; taps (i, j), runs over o.
fn gradInput_size(G: Geo) -> vec2<u32> { return vec2<u32>(G.N * u32(G.H * G.W), G.cg); }
fn gradInput_taps(G: Geo) -> vec2<u32> { return vec2<u32>(G.KH * G.KW, G.og); }
fn gradInput_steps(G: Geo) -> vec2<u32> { return vec2<u32>(G.ys.y, G.ws.x); }
fn gradInput_row(G: Geo, m: u32) -> Line {
  let n = m / u32(G.H * G.W); let h = (m / u32(G.W)) % u32(G.H); let w = m % u32(G.W);
  return Line(G.yo + n * G.ys.x + G.g * G.og * G.ys.y, i32(h + G.ph), i32(w + G.pw));
}
fn gradInput_col(G: Geo, c: u32) -> Line { return Line(G.wo + G.g * G.og * G.ws.x + c * G.ws.y, 0, 0); }
/** dy at the output pixel whose tap (i, j) reads this row's input pixel; none where no output pixel does. */
fn gradInput_a(G: Geo, r: Line, t: u32) -> At {
  let ty = r.y - i32(t / G.KW * G.dh); let tx = r.x - i32(t % G.KW * G.dw);
  let p = u32(max(ty, 0)) / G.sh; let q = u32(max(tx, 0)) / G.sw;
  let ok = (ty >= 0) & (tx >= 0) & (p * G.sh == u32(ty)) & (q * G.sw == u32(tx)) & (p < G.OH) & (q < G.OW);
  return At(select(r.base, r.base + p * G.ys.z + q * G.ys.w, ok), ok);
}
fn gradInput_b(G: Geo, c: Line, t: u32) -> At { return At(c.base + t / G.KW * G.ws.z + t % G.KW * G.ws.w, true); }
fn gradInput_in(G: Geo, c: Line, l: u32) -> bool { return true; }
fn gradInput_A(i: u32) -> f32 { return In0[i]; }
fn gradInput_B(i: u32) -> f32 { return In1[i]; }
fn gradInput_store(G: Geo, m: u32, col: u32, v: f32) {
  let n = m / u32(G.H * G.W); let h = (m / u32(G.W)) % u32(G.H); let w = m % u32(G.W);
  Out[G.xo + n * G.xs.x + (G.g * G.cg + col) * G.xs.y + h * G.xs.z + w * G.xs.w] = v;
}

// gradWeight (In0 = x, In1 = dy): [M, NC] = [O/g, C/g*KH*KW]; taps (n, p), runs over q
// (neighbouring pixels: runs over n would stride across whole images).
fn gradWeight_size(G: Geo) -> vec2<u32> { return vec2<u32>(G.og, G.cg * G.KH * G.KW); }
fn gradWeight_taps(G: Geo) -> vec2<u32> { return vec2<u32>(G.N * G.OH, G.OW); }
fn gradWeight_steps(G: Geo) -> vec2<u32> { return vec2<u32>(G.ys.w, G.sw * G.xs.w); }
fn gradWeight_row(G: Geo, o: u32) -> Line { return Line(G.yo + (G.g * G.og + o) * G.ys.y, 0, 0); }
fn gradWeight_col(G: Geo, col: u32) -> Line {
  let c = col / (G.KH * G.KW); let i = (col / G.KW) % G.KH; let j = col % G.KW;
  return Line(G.xo + (G.g * G.cg + c) * G.xs.y, i32(i * G.dh) - i32(G.ph), i32(j * G.dw) - i32(G.pw));
}
fn gradWeight_a(G: Geo, r: Line, t: u32) -> At { return At(r.base + t / G.OH * G.ys.x + t % G.OH * G.ys.z, true); }
/** The run's start may lie left of the image (u32 arithmetic wraps back); its columns there are never read as data. */
fn gradWeight_b(G: Geo, c: Line, t: u32) -> At {
  let y = c.y + i32(t % G.OH * G.sh);
  return At(c.base + t / G.OH * G.xs.x + u32(y) * G.xs.z + u32(c.x) * G.xs.w, (y >= 0) & (y < G.H));
}
fn gradWeight_in(G: Geo, c: Line, l: u32) -> bool { let x = c.x + i32(l * G.sw); return (x >= 0) & (x < G.W); }
fn gradWeight_A(i: u32) -> f32 { return In1[i]; }
fn gradWeight_B(i: u32) -> f32 { return In0[i]; }
fn gradWeight_store(G: Geo, o: u32, col: u32, v: f32) {
  let c = col / (G.KH * G.KW); let i = (col / G.KW) % G.KH; let j = col % G.KW;
  Out[G.wo + G.chunk * u(34u) + (G.g * G.og + o) * G.ws.x + c * G.ws.y + i * G.ws.z + j * G.ws.w] = v;
}

const TILE = 64u;
const BK = 16u;
var<workgroup> As: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> Bs: array<array<f32, 64>, 16>; // [k][col]

/** Workgroups [ceil(NC / 64), ceil(M / 64), groups] (see the parameter words). */
@compute @workgroup_size(16, 16)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let z = split_z(wid.z);
  let G = geometry(z.x, z.z);
  let size = {{MODE}}_size(G);
  let M = size.x; let NC = size.y;
  let runs = {{MODE}}_taps(G); let steps = {{MODE}}_steps(G);
  // This chunk's stretch [k_begin, K) of the sum.
  let range = tap_range(G, runs.x);
  let k_begin = range.x * runs.y;
  let K = range.y * runs.y;
  let row0 = (wid.y + nwg.y * z.y) * TILE;
  let col0 = wid.x * TILE;
  let tid = lid.y * 16u + lid.x;
  // Each thread loads the same 4 rows of A and 4 columns of B at every step: resolved once.
  var rows: array<Line, 4>;
  var cols: array<Line, 4>;
  for (var i = 0u; i < 4u; i++) {
    let e = tid + i * 256u;
    rows[i] = {{MODE}}_row(G, min(row0 + e / BK, M - 1u));
    cols[i] = {{MODE}}_col(G, min(col0 + e % TILE, NC - 1u));
  }
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = k_begin; k0 < K; k0 += BK) {
    for (var i = 0u; i < 4u; i++) {
      let e = tid + i * 256u;
      let ak = min(k0 + e % BK, K - 1u);
      let a = {{MODE}}_a(G, rows[i], ak / runs.y);
      As[e % BK][e / BK] = select(0.0, {{MODE}}_A(a.addr + ak % runs.y * steps.x), a.ok && (k0 + e % BK < K));
      let bk = min(k0 + e / TILE, K - 1u);
      let b = {{MODE}}_b(G, cols[i], bk / runs.y);
      let bl = bk % runs.y;
      Bs[e / TILE][e % TILE] = select(0.0, {{MODE}}_B(b.addr + bl * steps.y), b.ok && {{MODE}}_in(G, cols[i], bl) && k0 + e / TILE < K);
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
      if (c < NC) { {{MODE}}_store(G, r, c, acc[i][j]); }
    }
  }
}

/**
 * Each thread a block of C, {{ROWS}} rows by {{COLS}} columns (8x8 where the mode's GEMM
 * has 64 such blocks, else 4x4: codegen.ts convBlockCode writes the block's statements).
 * SwiftShader gathers every load, so a larger block does more multiply-adds per load.
 * Workgroups [ceil(NC / (8 * COLS)), ceil(M / (8 * ROWS)), groups] (z as split_z says).
 */
@compute @workgroup_size(8, 8)
fn direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let z = split_z(wid.z);
  let G = geometry(z.x, z.z);
  let size = {{MODE}}_size(G);
  let M = size.x; let NC = size.y;
  let runs = {{MODE}}_taps(G); let steps = {{MODE}}_steps(G);
  let range = tap_range(G, runs.x);
  let r0 = (gid.y + nwg.y * 8u * z.y) * {{ROWS}}u;
  let c0 = gid.x * {{COLS}}u;
  if (r0 >= M || c0 >= NC) { return; }
{{SETUP}}
  for (var t = range.x; t < range.y; t++) {
{{TAP}}
    // A whole tap in the padding adds nothing.
    if ({{SKIP}}) { continue; }
{{ADDRESSES}}
    for (var l = 0u; l < runs.y; l++) {
{{STEP}}
    }
  }
{{STORE}}
}

fn store_row(G: Geo, r: u32, c0: u32, M: u32, NC: u32, v: vec4<f32>) {
  if (r >= M || c0 >= NC) { return; }
  {{MODE}}_store(G, r, c0, v.x);
  if (c0 + 1u < NC) { {{MODE}}_store(G, r, c0 + 1u, v.y); }
  if (c0 + 2u < NC) { {{MODE}}_store(G, r, c0 + 2u, v.z); }
  if (c0 + 3u < NC) { {{MODE}}_store(G, r, c0 + 3u, v.w); }
}
