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
