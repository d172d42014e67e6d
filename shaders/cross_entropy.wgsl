// Softmax cross-entropy (loss and gradient) and accuracy over rows of class
// scores X [rows, classes] (ClassesKernel in worker/backend/kernel.ts). One
// workgroup: thread t takes rows t, t + 64, ...; a tree in workgroup memory
// then sums the rows' terms (a training batch is small next to its GEMMs).
// Parameter words: [rows, classes, ignoreIndex (i32 bits), hasIgnore,
// smoothing (f32 bits), reduction (0 mean, 1 sum, 2 none), softmax, constant
// incoming gradient (f32 bits), targets' offset, 0..., site at 19].
// The generator supplies the bindings (X, Targets, W?, G?, Out, GradOut, err), tgt(i), SPARSE,
// weight(c), gscale(r) (the incoming gradient of row r's loss) and loss_grad(t, all): grad_rows
// where the loss kernel writes its gradient too, else nothing.
{{BINDINGS}}

const WG = 64u;
var<workgroup> red: array<f32, 64>;

{{FLAG}}

// Sums red[0..64) into red[0]; every thread must call it.
fn tree_sum(t: u32, v: f32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

struct Stats { m: f32, s: f32, logS: f32 }

// Row max and sum of exp(x - max), as the softmax kernel computes them.
fn stats(base: u32, n: u32) -> Stats {
  var m = -3.4028234663852886e38;
  for (var c = 0u; c < n; c++) { m = max(m, X[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < n; c++) { s += exp(X[base + c] - m); }
  return Stats(m, s, log(s));
}

// The row's target class, or -1 when ignored; an out-of-range one is flagged and ignored.
fn target_of(r: u32) -> i32 {
  let t = i32(tgt(r));
  if (u(3u) != 0u && t == bitcast<i32>(u(2u))) { return -1; }
  if (t < 0 || t >= i32(u(1u))) { flag(t, u(1u)); return -1; }
  return t;
}

// q_c w_c: the (smoothed) target distribution times the class weight.
fn mass(r: u32, c: u32, t: i32) -> f32 {
  let n = u(1u);
  let eps = bitcast<f32>(u(4u));
  var q: f32;
  if (SPARSE) {
    if (t < 0) { return 0.0; }
    q = (1.0 - eps) * select(0.0, 1.0, i32(c) == t) + eps / f32(n);
  } else {
    q = f32(tgt(r * n + c)) * (1.0 - eps) + eps / f32(n);
  }
  return q * weight(c);
}

// What row r adds to the 'mean' denominator.
fn denom(t: i32) -> f32 {
  if (!SPARSE) { return 1.0; }
  if (t < 0) { return 0.0; }
  return weight(u32(t));
}

fn target_row(r: u32) -> i32 {
  if (SPARSE) { return target_of(r); }
  return 0;
}

@compute @workgroup_size(64)
fn loss(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  let rows = u(0u); let n = u(1u); let reduction = u(5u);
  var acc = 0.0;
  var total = 0.0;
  for (var r = t; r < rows; r += WG) {
    let base = r * n;
    let st = stats(base, n);
    let tc = target_row(r);
    var l = 0.0;
    for (var c = 0u; c < n; c++) {
      let q = mass(r, c, tc);
      if (q != 0.0) { l += q * (st.logS - (X[base + c] - st.m)); }
    }
    if (reduction == 2u) { Out[r] = l; }
    acc += l;
    total += denom(tc);
  }
  if (reduction == 2u) {
    loss_grad(t, 1.0);
    return;
  }
  let sum = tree_sum(t, acc);
  let all = tree_sum(t, total);
  if (t == 0u) { Out[0] = select(sum, sum / all, reduction == 0u); }
  loss_grad(t, all);
}

@compute @workgroup_size(64)
fn grad(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  let rows = u(0u);
  var total = 0.0;
  for (var r = t; r < rows; r += WG) { total += denom(target_row(r)); }
  grad_rows(t, tree_sum(t, total));
}

// Thread t's rows of the gradient into GradOut; `all` is the 'mean' denominator.
fn grad_rows(t: u32, all: f32) {
  let rows = u(0u); let n = u(1u); let reduction = u(5u);
  for (var r = t; r < rows; r += WG) {
    let base = r * n;
    let st = stats(base, n);
    let tc = target_row(r);
    let scale = select(gscale(r), gscale(r) / all, reduction == 0u);
    var sum = 0.0;
    for (var c = 0u; c < n; c++) { sum += mass(r, c, tc); }
    for (var c = 0u; c < n; c++) {
      let p = exp(X[base + c] - st.m) / st.s;
      GradOut[base + c] = scale * (sum * p - mass(r, c, tc));
    }
  }
}

fn better(a: f32, b: f32) -> bool {
  // NaN wins, then the larger value; ties keep the earlier index (argmax's rule).
  if (sn_isnan(b)) { return false; }
  return sn_isnan(a) || a > b;
}

fn score(base: u32, c: u32, st: Stats) -> f32 {
  if (u(6u) != 0u) { return exp(X[base + c] - st.m) / st.s; }
  return X[base + c];
}

@compute @workgroup_size(64)
fn hits(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  let rows = u(0u); let n = u(1u);
  var acc = 0.0;
  for (var r = t; r < rows; r += WG) {
    let base = r * n;
    var st = Stats(0.0, 1.0, 0.0);
    if (u(6u) != 0u) { st = stats(base, n); }
    var a = 0u;
    var av = score(base, 0u, st);
    for (var c = 1u; c < n; c++) {
      let v = score(base, c, st);
      if (better(v, av)) { a = c; av = v; }
    }
    var b = i32(tgt(r));
    if (!SPARSE) {
      b = 0;
      var bv = f32(tgt(base));
      for (var c = 1u; c < n; c++) {
        let v = f32(tgt(base + c));
        if (better(v, bv)) { b = i32(c); bv = v; }
      }
    }
    acc += select(0.0, 1.0, i32(a) == b);
  }
  let sum = tree_sum(t, acc);
  if (t == 0u) { Out[0] = sum / f32(rows); }
}
