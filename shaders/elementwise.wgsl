// Elementwise family: one template, specialised per expression, rank and
// buffer aliasing. Parameter words: [total, shape[R], then per view
// (inputs, then outputs): offset, strides[R]].
{{BINDINGS}}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg, 256u);
  if (idx >= u(0u)) { return; }
  var rem = idx;
{{OFFSETS}}
{{BODY}}
}
