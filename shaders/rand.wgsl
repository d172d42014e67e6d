// Counter-based random numbers: PCG hash of (seed, counter, index), the same
// integer arithmetic as the CPU twin. Parameter words: [size, seed, counter, p bits, dist].
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn uniform_at(i: u32) -> f32 {
  let h = pcg(pcg(u(1u) ^ (u(2u) * 0x9e3779b9u)) + i);
  return (f32(h >> 8u) + 0.5) / 16777216.0;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg, 256u);
  if (i >= u(0u)) { return; }
  let dist = u(4u);
  if (dist == 1u) {
    let u1 = uniform_at(2u * i);
    let u2 = uniform_at(2u * i + 1u);
    dst[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  } else {
    let x = uniform_at(i);
    dst[i] = select(x, select(0.0, 1.0, x < bitcast<f32>(u(3u))), dist == 2u);
  }
}
