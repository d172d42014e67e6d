// Shared by every generated kernel: parameters arrive as a uniform block of
// u32 words; wide dispatches fold the y dimension into a flat index.
struct Params { v: array<vec4<u32>, {{WORDS4}}> }
@group(0) @binding(0) var<uniform> P: Params;
fn u(i: u32) -> u32 { return P.v[i >> 2u][i & 3u]; }
fn flat_id(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 { return gid.x + gid.y * nwg.x * wg; }
// Infinities and NaN built at run time: constant expressions may not hold them.
var<private> SN_INF_BITS: u32 = 0x7f800000u;
fn sn_inf() -> f32 { return bitcast<f32>(SN_INF_BITS); }
fn sn_nan() -> f32 { return bitcast<f32>(SN_INF_BITS | 0x400000u); }
// By the bits: compilers may fold `a != a` to false under finite-math assumptions.
fn sn_isnan(a: f32) -> bool { return (bitcast<u32>(a) & 0x7fffffffu) > SN_INF_BITS; }
