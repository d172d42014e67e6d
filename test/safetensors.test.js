import { expect } from '@esm-bundle/chai';
import { mulberry32 } from './numeric.js';
import { encodeSafetensors, decodeSafetensors, SafetensorsError } from '../build/test/safetensors.js';

const SIZES = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u64le(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** A file from a header (object or raw JSON text) and data bytes; `length` overrides the header length field. */
function file(header, data = [], length) {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  return concat(u64le(length ?? json.length), json, Uint8Array.from(data));
}

function headerOf(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

function expectReject(bytes, pattern, opts) {
  let err;
  try {
    decodeSafetensors(bytes, opts);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a SafetensorsError matching ${pattern}`).to.be.instanceOf(SafetensorsError);
  expect(err.message).to.match(pattern);
  return err;
}

const bits32 = (a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

// A file as safetensors' save_file writes it (metadata {"format": "pt"} as
// PyTorch checkpoints carry): compact JSON with __metadata__ first, 8-byte
// dtypes first, offsets contiguous, header padded with spaces to 8 bytes.
const FIXTURE_HEADER =
  '{"__metadata__":{"format":"pt"},' +
  '"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},' +
  '"w":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]},' +
  '"h":{"dtype":"F16","shape":[2,3],"data_offsets":[40,52]},' +
  '"b":{"dtype":"BF16","shape":[4],"data_offsets":[52,60]}}' +
  '      '; // 258 bytes of JSON + 6 spaces = 264
const FIXTURE = concat(
  [0x08, 0x01, 0, 0, 0, 0, 0, 0], // header length 264, u64 little-endian
  Uint8Array.from(FIXTURE_HEADER, (c) => c.charCodeAt(0)),
  [
    // ids, I64: 1, -2, 2147483647
    0x01, 0, 0, 0, 0, 0, 0, 0,
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0,
    // w, F32: 1, -2, 0.5, 3.25
    0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f, 0, 0, 0x50, 0x40,
    // h, F16: 1 (3c00), -0.5 (b800), 2^-24 (0001), 1023*2^-24 (03ff), +inf (7c00), NaN (7e00)
    0x00, 0x3c, 0x00, 0xb8, 0x01, 0x00, 0xff, 0x03, 0x00, 0x7c, 0x00, 0x7e,
    // b, BF16: 1 (3f80), -3 (c040), 0.15625 (3e20), -inf (ff80)
    0x80, 0x3f, 0x40, 0xc0, 0x20, 0x3e, 0x80, 0xff,
  ],
);

function sampleTensors() {
  return {
    'layer.10.weight': { dtype: 'float32', shape: [3, 1, 2], data: Float32Array.from([1.5, -0, NaN, Infinity, -Infinity, 1e-40]) },
    'layer.9.bias': { dtype: 'float32', shape: [2], data: Float32Array.from([0.1, -7]) },
    step: { dtype: 'int32', shape: [], data: Int32Array.from([42]) },
    empty: { dtype: 'float32', shape: [0, 5], data: new Float32Array(0) },
    idx: { dtype: 'int32', shape: [5], data: Int32Array.from([0, -1, 7, -2147483648, 2147483647]) },
    '10': { dtype: 'int32', shape: [1, 1], data: Int32Array.from([3]) },
    'ŵeight': { dtype: 'float32', shape: [1], data: Float32Array.from([2]) },
  };
}

describe('safetensors codec', () => {
  describe('encode/decode round trip', () => {
    it('preserves names, shapes, dtypes, bit patterns and metadata', () => {
      const tensors = sampleTensors();
      const metadata = { format: 'pt', note: 'ünïcode ✓' };
      const bytes = encodeSafetensors(tensors, metadata);
      const out = decodeSafetensors(bytes);
      expect(Object.keys(out.tensors).sort()).to.deep.equal(Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        const got = out.tensors[name];
        expect(got.dtype, name).to.equal(t.dtype);
        expect(got.shape, name).to.deep.equal(t.shape);
        expect(got.data.constructor, name).to.equal(t.data.constructor);
        expect(bits32(got.data), name).to.deep.equal(bits32(t.data));
      }
      expect({ ...out.metadata }).to.deep.equal(metadata);
    });

    it('writes sorted names, contiguous offsets and a space-padded header', () => {
      const bytes = encodeSafetensors(sampleTensors());
      const { n, json } = headerOf(bytes);
      expect(n % 8).to.equal(0);
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(text).to.match(/^\{.*\} *$/);
      const names = Object.keys(sampleTensors()).sort();
      // Key order as written in the text (JSON.parse would reorder integer-like keys).
      const written = [...text.matchAll(/"((?:[^"\\]|\\.)*)":\{"dtype"/g)].map((m) => JSON.parse(`"${m[1]}"`));
      expect(written).to.deep.equal(names);
      let end = 0;
      for (const name of names) {
        expect(json[name].data_offsets[0], name).to.equal(end);
        end = json[name].data_offsets[1];
      }
      expect(bytes.length).to.equal(8 + n + end);
      expect(json.__metadata__).to.equal(undefined);
    });

    it('decodes from an unaligned view', () => {
      const bytes = encodeSafetensors(sampleTensors(), { a: 'b' });
      const shifted = new Uint8Array(bytes.length + 3);
      shifted.set(bytes, 1);
      const out = decodeSafetensors(shifted.subarray(1, 1 + bytes.length));
      expect(Array.from(out.tensors.idx.data)).to.deep.equal([0, -1, 7, -2147483648, 2147483647]);
      expect(out.metadata.a).to.equal('b');
    });

    it('encodes an empty state dict', () => {
      const out = decodeSafetensors(encodeSafetensors({}));
      expect(Object.keys(out.tensors)).to.deep.equal([]);
    });

    it('refuses to encode data that does not match its shape', () => {
      expect(() => encodeSafetensors({ x: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } })).to.throw(SafetensorsError, /"x".*shape/);
    });
  });

  describe('hand-made fixture', () => {
    it('has the header length it claims', () => {
      expect(FIXTURE_HEADER.length).to.equal(264);
    });

    it('decodes F32, F16, BF16 and I64 to the expected values', () => {
      // Decode from an odd offset too, so no read can rely on alignment.
      const shifted = new Uint8Array(FIXTURE.length + 1);
      shifted.set(FIXTURE, 1);
      for (const bytes of [FIXTURE, shifted.subarray(1)]) {
        const { tensors, metadata } = decodeSafetensors(bytes);
        expect({ ...metadata }).to.deep.equal({ format: 'pt' });
        expect(Object.keys(tensors).sort()).to.deep.equal(['b', 'h', 'ids', 'w']);

        expect(tensors.ids.dtype).to.equal('int32');
        expect(tensors.ids.shape).to.deep.equal([3]);
        expect(tensors.ids.data).to.be.instanceOf(Int32Array);
        expect(Array.from(tensors.ids.data)).to.deep.equal([1, -2, 2147483647]);

        expect(tensors.w.dtype).to.equal('float32');
        expect(tensors.w.shape).to.deep.equal([2, 2]);
        expect(Array.from(tensors.w.data)).to.deep.equal([1, -2, 0.5, 3.25]);

        expect(tensors.h.shape).to.deep.equal([2, 3]);
        const h = Array.from(tensors.h.data);
        expect(h.slice(0, 5)).to.deep.equal([1, -0.5, 2 ** -24, 1023 * 2 ** -24, Infinity]);
        expect(Number.isNaN(h[5])).to.equal(true);

        expect(tensors.b.shape).to.deep.equal([4]);
        expect(Array.from(tensors.b.data)).to.deep.equal([1, -3, 0.15625, -Infinity]);
      }
    });

    it('decodes F16 signed zero, max normal and negative subnormals', () => {
      const data = [0x00, 0x80, 0xff, 0x7b, 0x01, 0x80, 0x00, 0x04, 0x00, 0xfc];
      const { tensors } = decodeSafetensors(file({ h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] } }, data));
      const h = Array.from(tensors.h.data);
      expect(Object.is(h[0], -0)).to.equal(true);
      expect(h.slice(1)).to.deep.equal([65504, -(2 ** -24), 2 ** -14, -Infinity]);
    });
  });

  describe('I64 narrowing', () => {
    const i64File = (values) => {
      const data = new Uint8Array(values.length * 8);
      values.forEach((v, i) => new DataView(data.buffer).setBigInt64(i * 8, BigInt(v), true));
      return file({ 'emb.ids': { dtype: 'I64', shape: [values.length], data_offsets: [0, data.length] } }, data);
    };

    it('accepts the int32 extremes', () => {
      const { tensors } = decodeSafetensors(i64File([-2147483648, 2147483647, 0]));
      expect(Array.from(tensors['emb.ids'].data)).to.deep.equal([-2147483648, 2147483647, 0]);
    });

    it('rejects values outside int32, naming the tensor', () => {
      expectReject(i64File([5, 2147483648]), /"emb\.ids".*2147483648.*int32/);
      expectReject(i64File([-2147483649]), /"emb\.ids".*-2147483649.*int32/);
      expectReject(i64File(['9223372036854775807']), /"emb\.ids".*int32/);
    });
  });

  describe('rejects hostile files', () => {
    const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const eight = new Array(8).fill(0);

    it('file shorter than 8 bytes', () => {
      expectReject(new Uint8Array(0), /shorter than/);
      expectReject(new Uint8Array(7), /shorter than/);
    });

    it('header length beyond the file', () => {
      expectReject(file(ok, eight, 1000), /header length 1000 exceeds the \d+ bytes/);
      // Far larger than any buffer: must fail on the length check, not on allocation.
      expectReject(file(ok, eight, 2 ** 40), /header length 1099511627776 exceeds/);
    });

    it('header length beyond maxHeaderBytes', () => {
      expectReject(file(ok, eight), /exceeds the limit of 16 bytes/, { maxHeaderBytes: 16 });
    });

    it('header length that is not a safe integer', () => {
      expectReject(file(ok, eight, 2n ** 63n + 5n), /not a safe integer/);
      expectReject(file(ok, eight, 2n ** 53n), /not a safe integer/);
    });

    it('header that is not UTF-8', () => {
      const bytes = file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight);
      bytes[10] = 0xff;
      expectReject(bytes, /not valid UTF-8/);
      const bom = concat(u64le(5), [0xef, 0xbb, 0xbf, 0x7b, 0x7d]);
      expectReject(bom, /not valid JSON/);
    });

    it('header that is not JSON, or not an object', () => {
      expectReject(file('{"x":', eight), /not valid JSON/);
      expectReject(file('', []), /not valid JSON/);
      expectReject(file('[]', []), /not an object/);
      expectReject(file('null', []), /not an object/);
      expectReject(file('7', []), /not an object/);
    });

    it('entry that is not an object', () => {
      expectReject(file({ x: [1, 2] }, []), /"x".*not an object/);
      expectReject(file({ x: 'F32' }, []), /"x".*not an object/);
      expectReject(file({ x: null }, []), /"x".*not an object/);
    });

    it('unknown dtype, listing the known ones', () => {
      const err = expectReject(file({ x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, eight), /"x".*unknown dtype "F64"/);
      expect(err.message).to.include('F32, F16, BF16, I32, I64');
      expectReject(file({ x: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unknown dtype/);
      expectReject(file({ x: { shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unknown dtype/);
    });

    it('shape that is not an array of non-negative safe integers', () => {
      for (const shape of [[-1], [1.5], ['2'], 2, null, [2 ** 53]]) {
        expectReject(file({ x: { dtype: 'F32', shape, data_offsets: [0, 8] } }, eight), /"x".*shape .* not an array of non-negative integers/);
      }
    });

    it('shape size that does not match the data span', () => {
      expectReject(file({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight), /"x".*needs 12 bytes but data_offsets span 8/);
      expectReject(file({ x: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } }, eight), /"x".*needs 4 bytes/);
    });

    it('huge shapes fail the size check without allocating', () => {
      const huge = { dtype: 'F32', shape: [4294967296, 4294967296, 4294967296], data_offsets: [0, 8] };
      expectReject(file({ x: huge }, eight), /"x".*too many bytes/);
      expectReject(file({ x: { dtype: 'I64', shape: [2 ** 50, 2 ** 10], data_offsets: [0, 8] } }, eight), /"x".*too many bytes/);
      expectReject(file({ x: { dtype: 'I64', shape: [2 ** 52], data_offsets: [0, 8] } }, eight), /"x".*needs/);
      // A zero dim makes the tensor empty however large the others are.
      const { tensors } = decodeSafetensors(file({ x: { dtype: 'F32', shape: [2 ** 52, 0, 2 ** 52], data_offsets: [0, 0] } }, []));
      expect(tensors.x.data.length).to.equal(0);
    });

    it('data_offsets that are not two non-negative integers with begin <= end', () => {
      for (const data_offsets of [[0], [0, 8, 8], [-8, 0], [0, 8.5], ['0', '8'], null, { 0: 0, 1: 8 }]) {
        expectReject(file({ x: { dtype: 'F32', shape: [2], data_offsets } }, eight), /"x".*data_offsets .* not two non-negative integers/);
      }
      expectReject(file({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, eight), /"x".*begin 8 is after end 0/);
    });

    it('data_offsets outside the byte buffer', () => {
      expectReject(file({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight), /"x".*outside the 8-byte buffer/);
      expectReject(file({ x: { dtype: 'F32', shape: [0], data_offsets: [1e15, 1e15] } }, eight), /"x".*outside/);
    });

    it('entries that overlap, leave gaps or do not start at 0', () => {
      const two = (a, b) => ({ a: { dtype: 'F32', shape: [1], data_offsets: a }, b: { dtype: 'F32', shape: [1], data_offsets: b } });
      expectReject(file(two([0, 4], [0, 4]), eight), /overlap/);
      expectReject(file(two([0, 4], [2, 6]), eight), /"b".*overlap/);
      expectReject(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /"a".*gap at the start/);
      const twelve = new Array(12).fill(0);
      expectReject(file(two([0, 4], [8, 12]), twelve), /"b".*gap after the previous tensor/);
      // Empty tensors sit anywhere on a boundary, including before or after a tensor at the same offset.
      const three = { ...two([0, 4], [4, 8]), e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } };
      expect(Object.keys(decodeSafetensors(file(three, eight)).tensors)).to.have.length(3);
      expectReject(file({ ...two([0, 4], [4, 8]), e: { dtype: 'F32', shape: [0], data_offsets: [2, 2] } }, eight), /overlap/);
    });

    it('trailing bytes after the last tensor', () => {
      expectReject(file(ok, new Array(9).fill(0)), /1 trailing bytes/);
      expectReject(file({}, [1, 2, 3]), /3 trailing bytes/);
    });

    it('__metadata__ that is not an object of strings', () => {
      for (const m of [[], 'pt', null, 3]) {
        expectReject(file({ __metadata__: m, ...ok }, eight), /__metadata__ is not an object/);
      }
      expectReject(file({ __metadata__: { format: 1 }, ...ok }, eight), /__metadata__ value for "format" is not a string/);
      expectReject(file({ __metadata__: { a: { b: 'c' } }, ...ok }, eight), /not a string/);
    });

    it('keeps a tensor named __proto__ as an ordinary entry', () => {
      const { tensors } = decodeSafetensors(file('{"__proto__":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}', [7, 0, 0, 0]));
      expect(Object.keys(tensors)).to.deep.equal(['__proto__']);
      expect(Array.from(tensors['__proto__'].data)).to.deep.equal([7]);
    });
  });

  describe('fuzz', () => {
    it('2,000 seeded mutations either decode consistently or throw SafetensorsError', function () {
      this.timeout(60000);
      const rand = mulberry32(0x5afe7e25);
      const int = (n) => Math.floor(rand() * n);
      const pick = (xs) => xs[int(xs.length)];
      const bases = [FIXTURE, encodeSafetensors(sampleTensors(), { format: 'pt' })];

      const headerLength = (b) => (b.length < 8 ? 0 : Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)));
      const setLength = (b, n) => concat(u64le(n), b.subarray(8));

      // Rewrite the header text with `edit`, then fix the length field (or, sometimes, leave it stale).
      const editHeader = (b, edit) => {
        const n = Math.min(headerLength(b), b.length - 8);
        if (b.length < 8 || n <= 0) return b;
        const text = Array.from(b.subarray(8, 8 + n), (c) => String.fromCharCode(c)).join('');
        const next = edit(text);
        const json = Uint8Array.from(next, (c) => c.charCodeAt(0) & 0xff);
        return concat(u64le(rand() < 0.8 ? json.length : n), json, b.subarray(8 + n));
      };

      const mutations = {
        flip: (b) => {
          const c = b.slice();
          // Half the flips land in the byte buffer, where a file can stay valid.
          const start = rand() < 0.5 ? Math.min(c.length, 8 + headerLength(c)) : 0;
          if (c.length > start) c[start + int(c.length - start)] ^= 1 + int(255);
          return c;
        },
        truncate: (b) => b.slice(0, int(b.length)),
        length: (b) => {
          if (b.length < 8) return b;
          const n = BigInt(headerLength(b));
          const choices = [0n, n + 1n, n - 1n, n + 8n, n - 8n, BigInt(int(2 ** 32)), (BigInt(1 + int(2 ** 20)) << 32n) + n, 2n ** 64n - 1n, 100000001n];
          return setLength(b, BigInt.asUintN(64, pick(choices)));
        },
        insert: (b) => {
          const at = int(b.length + 1);
          const extra = Uint8Array.from({ length: 1 + int(8) }, () => int(256));
          return concat(b.subarray(0, at), extra, b.subarray(at));
        },
        delete: (b) => {
          const at = int(b.length + 1);
          return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(8))));
        },
        number: (b) =>
          editHeader(b, (text) => {
            const hits = [...text.matchAll(/-?\d+/g)];
            if (!hits.length) return text;
            const m = pick(hits);
            const v = Number(m[0]);
            const replacement = String(pick([0, 1, v + 1, v - 1, v * 2, v + 4, -v, 4294967296, 9007199254740993, '1e300', '1.5', '"8"', 'null']));
            return text.slice(0, m.index) + replacement + text.slice(m.index + m[0].length);
          }),
        dtype: (b) => editHeader(b, (text) => text.replace(/"(F32|F16|BF16|I32|I64)"/, () => `"${pick(['F32', 'F16', 'BF16', 'I32', 'I64', 'F64', 'f32', ''])}"`)),
        token: (b) =>
          editHeader(b, (text) => {
            const at = int(text.length);
            return text.slice(0, at) + pick(['{', '}', '[', ']', ',', ':', '"', ' ', '0', '']) + text.slice(at + int(2));
          }),
      };
      const kinds = Object.keys(mutations);

      let accepted = 0;
      let rejected = 0;
      const perKind = Object.fromEntries(kinds.map((k) => [k, { accepted: 0, rejected: 0 }]));
      for (let i = 0; i < 2000; i++) {
        let bytes = pick(bases);
        const applied = [];
        for (let k = 1 + int(3); k > 0; k--) {
          const kind = pick(kinds);
          applied.push(kind);
          bytes = mutations[kind](bytes);
        }
        let result;
        const started = performance.now();
        try {
          result = decodeSafetensors(bytes);
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw new Error(`mutation ${i} (${applied}) threw a non-SafetensorsError: ${e && e.stack}`);
          rejected++;
          perKind[applied[0]].rejected++;
          continue;
        }
        expect(performance.now() - started, `mutation ${i} decode time (ms)`).to.be.below(1000);
        accepted++;
        perKind[applied[0]].accepted++;
        // Accepted: every tensor's data matches its shape and the spans tile the buffer exactly.
        const { n, json } = headerOf(bytes);
        let span = 0;
        for (const [name, t] of Object.entries(result.tensors)) {
          const count = t.shape.reduce((p, d) => p * d, 1);
          expect(t.data.length, `mutation ${i} (${applied}) tensor ${name}`).to.equal(count);
          expect(t.data).to.be.instanceOf(t.dtype === 'float32' ? Float32Array : Int32Array);
          span += count * SIZES[json[name].dtype];
        }
        expect(span, `mutation ${i} (${applied}) total span`).to.equal(bytes.length - 8 - n);
        for (const v of Object.values(result.metadata)) expect(v).to.be.a('string');
      }
      console.log(`safetensors fuzz: ${accepted} accepted, ${rejected} rejected of 2000; by first mutation ${JSON.stringify(perKind)}`);
      expect(accepted + rejected).to.equal(2000);
      expect(accepted).to.be.above(0);
      expect(rejected).to.be.above(0);
    });
  });
});
