// The wasm backend's allocator over one WebAssembly.Memory. Freed blocks
// wait in size buckets for reuse (a training step frees and allocates the
// same sizes every time); a block still unused at the next trim goes back to
// the heap, where neighbours merge and the top comes down. WebAssembly memory
// never shrinks, so the top is what a later allocation grows into first.

const PAGE = 65536;

/** Buckets: four per doubling (as the WebGPU pool), 16-byte aligned for SIMD. */
export function bucketBytes(bytes: number): number {
  const b = Math.max(bytes, 16);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(p / 4, 16);
  return Math.ceil(b / step) * step;
}

export class Heap {
  /** Freed blocks by size; `aged` marks those that already sat through one trim unused. */
  private pool = new Map<number, { ptr: number; aged: boolean }[]>();
  /** Free ranges of the heap below `top`, sorted by address, never adjacent. */
  private spans: { ptr: number; bytes: number }[] = [];
  private pooled = 0;
  private top: number;

  constructor(private memory: WebAssembly.Memory, private base: number, private maxPages: number) {
    this.top = base;
  }

  /** A 16-byte aligned block of at least `size` bytes; its length is `bucketBytes(size)`. */
  alloc(size: number): number {
    const bytes = bucketBytes(size);
    const reuse = this.pool.get(bytes)?.pop();
    if (reuse) {
      this.pooled -= bytes;
      return reuse.ptr;
    }
    const fit = this.spans.findIndex((s) => s.bytes >= bytes);
    if (fit >= 0) {
      const span = this.spans[fit];
      const ptr = span.ptr;
      span.ptr += bytes;
      span.bytes -= bytes;
      if (!span.bytes) this.spans.splice(fit, 1);
      this.pooled -= bytes;
      return ptr;
    }
    const ptr = this.top;
    this.grow(ptr + bytes);
    this.top = ptr + bytes;
    return ptr;
  }

  free(ptr: number, size: number): void {
    const bytes = bucketBytes(size);
    let list = this.pool.get(bytes);
    if (!list) this.pool.set(bytes, (list = []));
    list.push({ ptr, aged: false });
    this.pooled += bytes;
  }

  /** Returns blocks unused since the previous trim to the heap. */
  trim(): void {
    const released: { ptr: number; bytes: number }[] = [];
    for (const [bytes, list] of this.pool) {
      const kept = list.filter((e) => {
        if (!e.aged) return (e.aged = true);
        released.push({ ptr: e.ptr, bytes });
        return false;
      });
      if (kept.length) this.pool.set(bytes, kept);
      else this.pool.delete(bytes);
    }
    if (!released.length) return;
    const all = [...this.spans, ...released].sort((a, b) => a.ptr - b.ptr);
    const merged: { ptr: number; bytes: number }[] = [];
    for (const s of all) {
      const last = merged[merged.length - 1];
      if (last && last.ptr + last.bytes === s.ptr) last.bytes += s.bytes;
      else merged.push({ ...s });
    }
    const last = merged[merged.length - 1];
    if (last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      this.pooled -= last.bytes;
      merged.pop();
    }
    this.spans = merged;
  }

  /** Bytes held free (pooled blocks and free ranges below the top). */
  get pooledBytes() {
    return this.pooled;
  }
  /** Bytes from the heap's base to its top. */
  get usedBytes() {
    return this.top - this.base;
  }

  private grow(end: number) {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    if (have / PAGE + pages > this.maxPages) throw new Error(`wasm backend: out of memory (${end - this.base} bytes wanted, the limit is ${this.maxPages * PAGE} bytes)`);
    // Grow by at least a quarter so that growth stays rare.
    this.memory.grow(Math.min(this.maxPages - have / PAGE, Math.max(pages, Math.ceil(have / PAGE / 4))));
  }
}
