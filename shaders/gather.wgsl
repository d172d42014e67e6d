// torch.gather and its transpose. One thread per index element: its
// coordinates (from indexShape) with coord[dim] replaced by the index give
// the input position. Parameter words: [total, rank, dim, inputShape[8], indexShape[8], site].
// A kernel cannot throw: an out-of-range index (negative ones too) is recorded
// in `err` as [site, index, size] by the first thread to find one, then read
// clamped; the engine reads `err` back with the next readback and throws there.
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<{{OUT}}>;
@group(0) @binding(4) var<storage, read_write> err: array<atomic<i32>, 4>;

{{FLAG}}

fn target_of(p: u32) -> u32 {
  let rank = u(1u); let dim = u(2u);
  var rem = p;
  var tgt = 0u;
  var stride = 1u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let n = u(11u + du);
    var c = rem % n;
    rem = rem / n;
    let size = u(3u + du);
    if (du == dim) {
      let i = index[p];
      if (i < 0 || i >= i32(size)) { flag(i, size); }
      c = u32(clamp(i, 0, i32(size) - 1));
    }
    tgt += c * stride;
    stride *= size;
  }
  return tgt;
}

{{KERNEL}}
