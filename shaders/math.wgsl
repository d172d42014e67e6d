// Scalar helpers that generated elementwise expressions call (see ELEMENTWISE
// in worker/backend/kernel.ts); included by the kernels that evaluate them.
fn sn_sigmoid(a: f32) -> f32 {
  // Stable for large |a|: never exponentiates a positive number.
  let e = exp(-abs(a));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), a >= 0.0);
}
fn sn_tanh(a: f32) -> f32 {
  let e = exp(-2.0 * abs(a));
  return sign(a) * (1.0 - e) / (1.0 + e);
}
// NaN in, NaN out, as in PyTorch: WGSL's max and min may return either operand.
fn sn_relu(a: f32) -> f32 { return select(max(a, 0.0), a, sn_isnan(a)); }
fn sn_max(a: f32, b: f32) -> f32 { return select(select(max(a, b), b, sn_isnan(b)), a, sn_isnan(a)); }
fn sn_min(a: f32, b: f32) -> f32 { return select(select(min(a, b), b, sn_isnan(b)), a, sn_isnan(a)); }
// WGSL's log, sqrt and inverseSqrt are indeterminate below zero (SwiftShader's log(-1) is finite);
// PyTorch gives NaN there, and -inf / inf at zero.
fn sn_log(a: f32) -> f32 {
  if (a < 0.0 || sn_isnan(a)) { return sn_nan(); }
  if (a == 0.0) { return -sn_inf(); }
  return log(a);
}
fn sn_sqrt(a: f32) -> f32 { return select(sqrt(a), sn_nan(), a < 0.0); }
fn sn_rsqrt(a: f32) -> f32 {
  if (a < 0.0) { return sn_nan(); }
  return select(inverseSqrt(a), sn_inf(), a == 0.0);
}
fn sn_softplus(a: f32) -> f32 { return max(a, 0.0) + log(1.0 + exp(-abs(a))); }
fn sn_erf(x: f32) -> f32 {
  // Abramowitz & Stegun 7.1.26, as in the CPU twin.
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return sign(x) * y;
}
fn sn_pow(a: f32, b: f32) -> f32 {
  // WGSL's pow is undefined for a < 0; follow IEEE pow like PyTorch.
  if (b == 0.0) { return 1.0; }
  if (a == 0.0) { return select(0.0, sn_inf(), b < 0.0); }
  let r = pow(abs(a), b);
  if (a > 0.0) { return r; }
  if (fract(b) != 0.0) { return sn_nan(); }
  return select(r, -r, fract(b * 0.5) != 0.0);
}
// sin and cos with Cody-Waite range reduction: the hardware (and SwiftShader)
// builtins lose ~1e-4 away from zero. x = k*pi/2 + r with pi/2 split in three
// parts whose products with k stay exact for |k| < 2^12, then Cephes' sinf /
// cosf polynomials on |r| <= pi/4. Within ~2e-7 of float64 for |x| <= 1e4;
// beyond 1e5 (and for inf / NaN) the builtin takes over.
fn sn_sincos_poly(r: f32, want_sin: bool) -> f32 {
  let z = r * r;
  if (want_sin) {
    return ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  }
  return ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
}
// quadrant_shift: 0 for sin, 1 for cos (cos x = sin(x + pi/2)).
fn sn_sincos(x: f32, quadrant_shift: i32) -> f32 {
  if (!(abs(x) <= 1e5)) { return select(sin(x), cos(x), quadrant_shift == 1); }
  let k = round(x * 0.63661977236758134);
  let r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let q = (i32(k) + quadrant_shift) & 3;
  let v = sn_sincos_poly(r, (q & 1) == 0);
  return select(v, -v, q >= 2);
}
fn sn_sin(x: f32) -> f32 { return sn_sincos(x, 0); }
fn sn_cos(x: f32) -> f32 { return sn_sincos(x, 1); }
