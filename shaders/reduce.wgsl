// Reduction of the middle axis of a contiguous [outer, n, inner] tensor, or
// of an elementwise prologue over strided views of that shape (load).
// Parameter words: [outer, n, inner, scale bits, then per prologue view:
// offset, strides[3]].
// main_tree: one workgroup per output; 64 threads stride over n, then a tree
// in workgroup memory (GPUs). main_direct: one thread per output and a plain
// loop (software adapters, where barriers are emulated at great cost).
{{SOURCES}}
@group(0) @binding({{DST}}) var<storage, read_write> dst: array<{{OUT}}>;
var<workgroup> vals: array<{{T}}, 64>;
var<workgroup> idxs: array<u32, 64>;

fn sn_never_nan(a: i32) -> bool { return false; }

fn better(a: {{T}}, ia: u32, b: {{T}}, ib: u32) -> bool {
  // NaN wins, then the extreme value, then the lower index (PyTorch's tie rule).
  if ({{ISNAN}}(a)) { return !{{ISNAN}}(b) || ia < ib; }
  if ({{ISNAN}}(b)) { return false; }
  return {{CMP}} || (a == b && ia < ib);
}

fn write(o: u32, acc: {{T}}, best: u32) { {{WRITE}} }

@compute @workgroup_size(64)
fn main_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let o = wid.x + wid.y * nwg.x;
  let outer = u(0u); let n = u(1u); let inner = u(2u);
  if (o >= outer * inner) { return; }
  let base = (o / inner) * n * inner + o % inner;
  let t = lid.x;
  var acc: {{T}} = {{INIT}};
  var best: u32 = 0xffffffffu;
  for (var j = t; j < n; j += 64u) {
    let v = load(base, o, j);
    {{ACCUMULATE}}
  }
  vals[t] = acc;
  idxs[t] = best;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) {
      let a = vals[t]; let b = vals[t + s];
      {{COMBINE}}
    }
    workgroupBarrier();
  }
  if (t == 0u) { write(o, vals[0], idxs[0]); }
}

@compute @workgroup_size(64)
fn main_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_id(gid, nwg, 64u);
  let outer = u(0u); let n = u(1u); let inner = u(2u);
  if (o >= outer * inner) { return; }
  let base = (o / inner) * n * inner + o % inner;
  var acc: {{T}} = {{INIT}};
  var best: u32 = 0xffffffffu;
  for (var j = 0u; j < n; j++) {
    let v = load(base, o, j);
    {{ACCUMULATE}}
  }
  write(o, acc, best);
}
