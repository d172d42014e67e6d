// Scaled dot-product attention without the [L, S] scores in memory (see
// AttentionKernel in worker/backend/kernel.ts). A workgroup takes ROWS rows of
// one head (n, h), a thread per row; the other side's rows pass through
// workgroup memory TILE at a time, and each thread keeps its own row and its
// sums in registers. The forward keeps a running max and sum per query row
// (the online softmax), rescaling its output sum when the max grows; the
// backward recomputes each probability from the row's logsumexp. On software
// adapters (SwiftShader) the staging is left out: every thread reads the other
// side's rows straight from storage (STAGE_* blocks, filled by codegen).
// Loops over a row's features are written on one line each: codegen unrolls
// them (the head sizes are constants), so the rows live in registers.
// Parameter words: N, H, L, S, scale (f32 bits), then per view its offset and
// four strides at the V_* words. Each section below '// mode:' is one kernel;
// codegen prepends the shared part, BINDINGS and the constants.

const ROWS: u32 = 64u;

fn at(view: u32, n: u32, h: u32, i: u32, d: u32) -> u32 {
  return u(view) + n * u(view + 1u) + h * u(view + 2u) + i * u(view + 3u) + d * u(view + 4u);
}

/** The additive mask and causal block of pair (i, j). */
fn bias(n: u32, h: u32, i: u32, j: u32) -> f32 {
  var b = 0.0;
{{MASK}}
  if (CAUSAL && j > i) { b = -sn_inf(); }
  return b;
}

/** exp(s - top), exactly 0 for a blocked pair (also where top is -inf: a row blocked so far). */
fn weight(s: f32, top: f32) -> f32 {
  return select(exp(s - top), 0.0, s == -sn_inf());
}

struct Head { n: u32, h: u32, ok: bool }

/** Heads run along y, folded into z past the per-dimension limit. */
fn head_of(wid: vec3<u32>) -> Head {
  let bh = wid.y + wid.z * 65535u;
  return Head(bh / u(1u), bh % u(1u), bh < u(0u) * u(1u));
}

// mode: rows
{{STAGE_KEYS}}

/** Keys a tile of query rows can see: all, or with the causal block up to its last row. */
fn key_end(tile: u32) -> u32 {
  return select(u(3u), min(u(3u), (tile + 1u) * ROWS), CAUSAL);
}

/** Row i's (pre-scaled) query against the staged key c. */
fn score(q: ptr<function, array<f32, QK>>, c: u32, n: u32, h: u32, i: u32, j: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < QK; d++) { s += (*q)[d] * kt(c, d); }
  return s + bias(n, h, i, j);
}

// mode: forward
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let hd = head_of(wid);
  if (!hd.ok) { return; }
  let L = u(2u);
  let S = u(3u);
  let scale = bitcast<f32>(u(4u));
  let i = wid.x * ROWS + t;
  let row = min(i, L - 1u);
  var q: array<f32, QK>;
  for (var d = 0u; d < QK; d++) { q[d] = Q[at(V_Q, hd.n, hd.h, row, d)] * scale; }
  var acc: array<f32, VF>;
  var top = -sn_inf();
  var sum = 0.0;
  let end = key_end(wid.x);
  for (var j0 = 0u; j0 < end; j0 += TILE) {
    stage_keys(hd.n, hd.h, j0, t, true);
    let count = min(TILE, S - j0);
    for (var c = 0u; c < count; c++) {
      let s = score(&q, c, hd.n, hd.h, row, j0 + c);
      if (s > top) {
        // A new running max: what is summed so far shrinks by exp(top - s); this key weighs 1.
        let keep = weight(top, s);
        sum = sum * keep + 1.0;
        for (var e = 0u; e < VF; e++) { acc[e] = acc[e] * keep + vt(c, e); }
        top = s;
      } else {
        let p = weight(s, top);
        sum += p;
        for (var e = 0u; e < VF; e++) { acc[e] += p * vt(c, e); }
      }
    }
  }
  if (i < L) {
    // A row with every key blocked is NaN, as softmax over -inf gives.
    for (var e = 0u; e < VF; e++) { O[at(V_O, hd.n, hd.h, i, e)] = select(acc[e] / sum, sn_nan(), sum == 0.0); }
  }
}

// mode: gradQ
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let hd = head_of(wid);
  if (!hd.ok) { return; }
  let L = u(2u);
  let S = u(3u);
  let scale = bitcast<f32>(u(4u));
  let i = wid.x * ROWS + t;
  let row = min(i, L - 1u);
  var q: array<f32, QK>;
  for (var d = 0u; d < QK; d++) { q[d] = Q[at(V_Q, hd.n, hd.h, row, d)] * scale; }
  let end = key_end(wid.x);
  // Pass 1: the row's logsumexp.
  var top = -sn_inf();
  var sum = 0.0;
  for (var j0 = 0u; j0 < end; j0 += TILE) {
    stage_keys(hd.n, hd.h, j0, t, false);
    let count = min(TILE, S - j0);
    for (var c = 0u; c < count; c++) {
      let s = score(&q, c, hd.n, hd.h, row, j0 + c);
      if (s > top) {
        sum = sum * weight(top, s) + 1.0;
        top = s;
      } else {
        sum += weight(s, top);
      }
    }
  }
  let lse = top + log(sum);
  var g: array<f32, VF>;
  var delta = 0.0;
  for (var e = 0u; e < VF; e++) { g[e] = G[at(V_G, hd.n, hd.h, row, e)]; delta += g[e] * O[at(V_O, hd.n, hd.h, row, e)]; }
  // Pass 2: dq = scale * sum_j p_ij (dO_i . v_j - delta_i) k_j.
  var dq: array<f32, QK>;
  for (var j0 = 0u; j0 < end; j0 += TILE) {
    stage_keys(hd.n, hd.h, j0, t, true);
    let count = min(TILE, S - j0);
    for (var c = 0u; c < count; c++) {
      let p = weight(score(&q, c, hd.n, hd.h, row, j0 + c), lse);
      if (p == 0.0) { continue; }
      var dp = 0.0;
      for (var e = 0u; e < VF; e++) { dp += g[e] * vt(c, e); }
      let ds = p * (dp - delta);
      for (var d = 0u; d < QK; d++) { dq[d] += ds * kt(c, d); }
    }
  }
  if (i < L) {
    for (var d = 0u; d < QK; d++) { GQ[at(V_GQ, hd.n, hd.h, i, d)] = dq[d] * scale; }
    let r = (hd.n * u(1u) + hd.h) * L + i;
    ST[2u * r] = lse;
    ST[2u * r + 1u] = delta;
  }
}

// mode: gradKV
{{STAGE_QUERIES}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let hd = head_of(wid);
  if (!hd.ok) { return; }
  let L = u(2u);
  let S = u(3u);
  let scale = bitcast<f32>(u(4u));
  let j = wid.x * ROWS + t;
  let key = min(j, S - 1u);
  var k: array<f32, QK>;
  for (var d = 0u; d < QK; d++) { k[d] = K[at(V_K, hd.n, hd.h, key, d)] * scale; }
  var v: array<f32, VF>;
  for (var e = 0u; e < VF; e++) { v[e] = V[at(V_V, hd.n, hd.h, key, e)]; }
  var dk: array<f32, QK>;
  var dv: array<f32, VF>;
  // Under the causal block, queries before this tile's first key see none of its keys.
  let start = select(0u, (wid.x * ROWS / TILE) * TILE, CAUSAL);
  for (var i0 = start; i0 < L; i0 += TILE) {
    stage_queries(hd.n, hd.h, i0, t);
    let count = min(TILE, L - i0);
    for (var c = 0u; c < count; c++) {
      var s = 0.0;
      for (var d = 0u; d < QK; d++) { s += qt(c, d) * k[d]; }
      let p = weight(s + bias(hd.n, hd.h, i0 + c, key), lse_at(c));
      if (p == 0.0) { continue; }
      var dp = 0.0;
      for (var e = 0u; e < VF; e++) { dp += gt(c, e) * v[e]; dv[e] += p * gt(c, e); }
      let ds = p * (dp - delta_at(c));
      for (var d = 0u; d < QK; d++) { dk[d] += ds * qt(c, d); }
    }
  }
  if (j < S) {
    for (var d = 0u; d < QK; d++) { GK[at(V_GK, hd.n, hd.h, j, d)] = dk[d] * scale; }
    for (var e = 0u; e < VF; e++) { GV[at(V_GV, hd.n, hd.h, j, e)] = dv[e]; }
  }
}
