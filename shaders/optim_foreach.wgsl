// Multi-tensor elementwise family (optimizer steps over every parameter in
// one launch): segments run back to back over the flat index. Parameter
// words: [total, then per segment: its end, its cols, then each slot's offset,
// row and col strides]; which buffer a slot reads in a segment is part of the code.
{{BINDINGS}}

struct Results { {{FIELDS}} }

fn sn_update({{ARGS}}) -> Results {
{{BODY}}
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg, 256u);
  if (idx >= u(0u)) { return; }
{{SEGMENTS}}
}
