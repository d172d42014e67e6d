// safetensors codec: 8-byte little-endian u64 header length N, N bytes of
// UTF-8 JSON header, then the byte buffer. The header maps each tensor name to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the byte
// buffer) plus an optional "__metadata__" object of strings.
// The decoder treats every file as hostile: every field is validated before
// any tensor memory is allocated, so a bad file costs at most its own size.

export type SafeDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export interface RawTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const DTYPE_BYTES: Record<SafeDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };
const KNOWN_DTYPES = Object.keys(DTYPE_BYTES).join(', ');
const METADATA_KEY = '__metadata__';
const DEFAULT_MAX_HEADER_BYTES = 100_000_000;
const TWO_POW_32 = 2 ** 32;

/** Number of elements, or undefined when the product is not a safe integer. */
function elementCount(shape: readonly number[]): number | undefined {
  // A zero dim makes the tensor empty however large the other dims are.
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    if (n > Number.MAX_SAFE_INTEGER / d) return undefined;
    n *= d;
  }
  return n;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

// ---------------------------------------------------------------- encode

/** Encode; float32 -> F32, int32 -> I32. Names sorted ascending, offsets contiguous, header padded with spaces to 8 bytes. */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  // The header is assembled by hand: JSON.stringify on an object would move
  // integer-like names ("0", "10") ahead of the others and break the order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata value for "${k}" must be a string, got ${typeof v}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new SafetensorsError(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
    const t = tensors[name];
    const dtype = t.dtype === 'float32' ? 'F32' : t.dtype === 'int32' ? 'I32' : undefined;
    if (dtype === undefined) throw new SafetensorsError(`tensor "${name}": cannot encode dtype ${String(t.dtype)}`);
    if (!t.shape.every(isIndex)) throw new SafetensorsError(`tensor "${name}": shape [${t.shape}] must hold non-negative integers`);
    if (elementCount(t.shape) !== t.data.length) {
      throw new SafetensorsError(`tensor "${name}": shape [${t.shape}] does not match data length ${t.data.length}`);
    }
    const end = offset + t.data.length * 4;
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }

  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLen % TWO_POW_32, true);
  view.setUint32(4, Math.floor(headerLen / TWO_POW_32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);

  let pos = 8 + headerLen;
  for (const name of names) {
    const { data } = tensors[name];
    // Copy raw 32-bit patterns so NaN payloads survive the round trip.
    const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < words.length; i++, pos += 4) view.setUint32(pos, words[i], true);
  }
  return out;
}

// ---------------------------------------------------------------- decode

interface Entry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

function parseEntry(name: string, raw: unknown, bufferLen: number): Entry {
  const bad = (what: string) => new SafetensorsError(`tensor "${name}": ${what}`);
  if (!isPlainObject(raw)) throw bad('header entry is not an object');

  const dtype = raw.dtype;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw bad(`unknown dtype ${JSON.stringify(dtype)} (known: ${KNOWN_DTYPES})`);
  }
  const shape = raw.shape;
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw bad(`shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  const offsets = raw.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) throw bad(`data_offsets begin ${begin} is after end ${end}`);
  if (end > bufferLen) throw bad(`data_offsets [${begin}, ${end}] lie outside the ${bufferLen}-byte buffer`);

  const count = elementCount(shape);
  const size = DTYPE_BYTES[dtype as SafeDType];
  if (count === undefined || count * size !== end - begin) {
    throw bad(`shape [${shape}] of ${dtype} needs ${count === undefined ? 'too many' : count * size} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype: dtype as SafeDType, shape: shape.slice(), count, begin, end };
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (!isPlainObject(raw)) throw new SafetensorsError(`${METADATA_KEY} is not an object`);
  const metadata: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new SafetensorsError(`${METADATA_KEY} value for "${k}" is not a string`);
    metadata[k] = v;
  }
  return metadata;
}

let f16Table: Float32Array | undefined;

/** All 65,536 half-precision values, built once: subnormals, infinities and NaN included. */
function halfToFloatTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    f16Table[h] =
      exp === 0 ? sign * frac * 2 ** -24
      : exp === 31 ? (frac ? NaN : sign * Infinity)
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return f16Table;
}

function readTensor(view: DataView, base: number, e: Entry): RawTensor {
  const at = base + e.begin;
  const n = e.count;
  switch (e.dtype) {
    case 'F32': {
      const data = new Float32Array(n);
      // Bit patterns, not values, so NaN payloads are kept exactly.
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint32(at + 4 * i, true);
      return { dtype: 'float32', shape: e.shape, data };
    }
    case 'F16': {
      const table = halfToFloatTable();
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = table[view.getUint16(at + 2 * i, true)];
      return { dtype: 'float32', shape: e.shape, data };
    }
    case 'BF16': {
      const data = new Float32Array(n);
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(at + 2 * i, true) << 16;
      return { dtype: 'float32', shape: e.shape, data };
    }
    case 'I32': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getInt32(at + 4 * i, true);
      return { dtype: 'int32', shape: e.shape, data };
    }
    case 'I64': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = view.getUint32(at + 8 * i, true);
        const hi = view.getInt32(at + 8 * i + 4, true);
        // In int32 range exactly when the high word is the sign extension of the low word.
        if (hi !== (lo >= 0x80000000 ? -1 : 0)) {
          const value = BigInt(hi) * BigInt(TWO_POW_32) + BigInt(lo);
          throw new SafetensorsError(`tensor "${e.name}": I64 value ${value} at index ${i} is outside the int32 range`);
        }
        data[i] = lo | 0;
      }
      return { dtype: 'int32', shape: e.shape, data };
    }
  }
}

/** Decode a hostile file. F32/F16/BF16 widen to float32; I32 as int32; I64 narrowed to int32 with a range check (error naming the tensor if any value is outside int32). */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts?: { maxHeaderBytes?: number },
): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  const maxHeaderBytes = opts?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (bytes.length < 8) throw new SafetensorsError(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * TWO_POW_32 + lo;
  if (!Number.isSafeInteger(headerLen)) {
    throw new SafetensorsError(`header length ${BigInt(hi) * BigInt(TWO_POW_32) + BigInt(lo)} is not a safe integer`);
  }
  if (headerLen > maxHeaderBytes) {
    throw new SafetensorsError(`header length ${headerLen} exceeds the limit of ${maxHeaderBytes} bytes`);
  }
  if (headerLen > bytes.length - 8) {
    throw new SafetensorsError(`header length ${headerLen} exceeds the ${bytes.length - 8} bytes after the length field`);
  }

  let text: string;
  // ignoreBOM keeps a leading BOM in the text, so JSON.parse rejects it as other readers do.
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) throw new SafetensorsError('header JSON is not an object');

  const base = 8 + headerLen;
  const bufferLen = bytes.length - base;
  let metadata: Record<string, string> = Object.create(null);
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = parseMetadata(raw);
    else entries.push(parseEntry(name, raw, bufferLen));
  }

  // Sorting by (begin, end) puts empty tensors ahead of a tensor starting at
  // the same offset, so only genuine overlaps and gaps fail below.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      const problem = e.begin < expected ? 'overlap the previous tensor' : expected === 0 ? 'leave a gap at the start of the buffer' : 'leave a gap after the previous tensor';
      throw new SafetensorsError(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] ${problem} (expected begin ${expected})`);
    }
    expected = e.end;
  }
  if (expected !== bufferLen) {
    throw new SafetensorsError(`${bufferLen - expected} trailing bytes after the last tensor (tensors cover ${expected} of ${bufferLen})`);
  }

  // Null-prototype records: a tensor named "__proto__" stays an ordinary key.
  const tensors: Record<string, RawTensor> = Object.create(null);
  for (const e of entries) tensors[e.name] = readTensor(view, base, e);
  return { tensors, metadata };
}
