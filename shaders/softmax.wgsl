// Numerically stable softmax / log-softmax over the middle axis of a
// contiguous [outer, n, inner]: max, then the sum of exp(x - max).
// Parameter words: [outer, n, inner].
// main_tree: one 64-thread workgroup per row (GPUs); main_direct: one thread
// per row (software adapters).
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
var<workgroup> red: array<f32, 64>;

fn row_base(row: u32) -> u32 { return (row / u(2u)) * u(1u) * u(2u) + row % u(2u); }

@compute @workgroup_size(64)
fn main_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let n = u(1u); let inner = u(2u);
  if (row >= u(0u) * inner) { return; }
  let base = row_base(row);
  let t = lid.x;
  var m = -3.4028234663852886e38;
  for (var j = t; j < n; j += 64u) { m = max(m, src[base + j * inner]); }
  red[t] = m;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = t; j < n; j += 64u) { sum += exp(src[base + j * inner] - m); }
  red[t] = sum;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  sum = red[0];
  let logSum = log(sum);
  for (var j = t; j < n; j += 64u) {
    let z = src[base + j * inner] - m;
    dst[base + j * inner] = {{RESULT}};
  }
}

@compute @workgroup_size(64)
fn main_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_id(gid, nwg, 64u);
  let n = u(1u); let inner = u(2u);
  if (row >= u(0u) * inner) { return; }
  let base = row_base(row);
  var m = -3.4028234663852886e38;
  for (var j = 0u; j < n; j++) { m = max(m, src[base + j * inner]); }
  var sum = 0.0;
  for (var j = 0u; j < n; j++) { sum += exp(src[base + j * inner] - m); }
  let logSum = log(sum);
  for (var j = 0u; j < n; j++) {
    let z = src[base + j * inner] - m;
    dst[base + j * inner] = {{RESULT}};
  }
}
