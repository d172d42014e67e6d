// Records the first out-of-range index a kernel meets, as [site, index, size]
// in `err`, by the first thread to find one (a kernel cannot throw: the engine
// reads `err` back with the next readback and throws there). The site is
// parameter word {{SITE_WORD}}. Shared by gather.wgsl and cross_entropy.wgsl.
fn flag(i: i32, size: u32) {
  if (atomicLoad(&err[0]) != 0) { return; }
  let r = atomicCompareExchangeWeak(&err[0], 0, i32(u({{SITE_WORD}}u)));
  if (r.exchanged) {
    atomicStore(&err[1], i);
    atomicStore(&err[2], i32(size));
  }
}
