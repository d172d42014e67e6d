// A small WebAssembly binary writer: enough to assemble one module with
// imported memory and functions and a few exported functions. The map
// kernels' loops are generated with it at run time (see map.ts).

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Opcodes used by the generators (SIMD ones are emitted through `Code.simd`). */
export const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, call: 0x10, select: 0x1b,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, f32Load: 0x2a, i32Store: 0x36, f32Store: 0x38,
  i32Const: 0x41, f32Const: 0x43, f64Const: 0x44,
  i32Eqz: 0x45, i32LtS: 0x48, i32GeS: 0x4e,
  f32Eq: 0x5b, f32Ne: 0x5c, f32Lt: 0x5d, f32Gt: 0x5e, f32Le: 0x5f, f32Ge: 0x60,
  f64Eq: 0x61, f64Ne: 0x62, f64Lt: 0x63, f64Gt: 0x64, f64Le: 0x65, f64Ge: 0x66,
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c,
  f32Abs: 0x8b, f32Neg: 0x8c, f32Floor: 0x8e, f32Sqrt: 0x91, f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94, f32Div: 0x95, f32Min: 0x96, f32Max: 0x97,
  f64Abs: 0x99, f64Neg: 0x9a, f64Floor: 0x9c, f64Sqrt: 0x9f, f64Add: 0xa0, f64Sub: 0xa1, f64Mul: 0xa2, f64Div: 0xa3, f64Min: 0xa4, f64Max: 0xa5,
  f32ConvertI32S: 0xb2, f32DemoteF64: 0xb6, f64ConvertI32S: 0xb7, f64PromoteF32: 0xbb,
} as const;

export const simd = {
  load: 0, load32Splat: 9, store: 11, i32x4Splat: 17, f32x4Splat: 19,
  f32x4Eq: 65, f32x4Ne: 66, f32x4Lt: 67, f32x4Gt: 68, f32x4Le: 69, f32x4Ge: 70,
  and: 78, bitselect: 82, f32x4Floor: 104,
  f32x4Abs: 224, f32x4Neg: 225, f32x4Sqrt: 227, f32x4Add: 228, f32x4Sub: 229, f32x4Mul: 230, f32x4Div: 231,
  f32x4Min: 232, f32x4Max: 233, f32x4Pmax: 235, f32x4ConvertI32x4S: 250,
} as const;

function uleb(out: number[], v: number) {
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
}

function sleb(out: number[], v: number) {
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) return void out.push(b);
    out.push(b | 0x80);
  }
}

const f32Bytes = new Uint8Array(4);
const f64Bytes = new Uint8Array(8);

/** One function body under construction. */
export class Code {
  readonly bytes: number[] = [];
  private locals: ValType[] = [];
  constructor(readonly params: ValType[], readonly results: ValType[]) {}

  /** Declares a local (after the parameters) and returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }
  op(...codes: number[]) { this.bytes.push(...codes); return this; }
  get(i: number) { this.bytes.push(op.localGet); uleb(this.bytes, i); return this; }
  set(i: number) { this.bytes.push(op.localSet); uleb(this.bytes, i); return this; }
  tee(i: number) { this.bytes.push(op.localTee); uleb(this.bytes, i); return this; }
  i32(v: number) { this.bytes.push(op.i32Const); sleb(this.bytes, v | 0); return this; }
  f32(v: number) { new DataView(f32Bytes.buffer).setFloat32(0, v, true); this.bytes.push(op.f32Const, ...f32Bytes); return this; }
  f64(v: number) { new DataView(f64Bytes.buffer).setFloat64(0, v, true); this.bytes.push(op.f64Const, ...f64Bytes); return this; }
  call(fn: number) { this.bytes.push(op.call); uleb(this.bytes, fn); return this; }
  br(code: number, depth: number) { this.bytes.push(code); uleb(this.bytes, depth); return this; }
  /** A load or store with alignment log2 and offset 0. */
  mem(code: number, align: number) { this.bytes.push(code, align, 0); return this; }
  simd(code: number, memAlign?: number) {
    this.bytes.push(0xfd);
    uleb(this.bytes, code);
    if (memAlign !== undefined) this.bytes.push(memAlign, 0);
    return this;
  }

  /** The encoded body: local declarations (one group per local), code, end. */
  encode(): number[] {
    const out: number[] = [];
    uleb(out, this.locals.length);
    for (const t of this.locals) out.push(1, t);
    out.push(...this.bytes, op.end);
    const sized: number[] = [];
    uleb(sized, out.length);
    return sized.concat(out);
  }
}

export interface FuncImport { module: string; name: string; params: ValType[]; results: ValType[] }

/**
 * A module importing env.memory (shared or not) and `imports` (function indices 0..),
 * defining `exports` in order after them.
 */
export function assemble(opts: { shared: boolean; imports: FuncImport[]; exports: [string, Code][] }): Uint8Array<ArrayBuffer> {
  const types: string[] = [];
  const typeOf = (params: ValType[], results: ValType[]) => {
    const key = `${params.join(',')}:${results.join(',')}`;
    let i = types.indexOf(key);
    if (i < 0) i = types.push(key) - 1;
    return i;
  };
  const importTypes = opts.imports.map((f) => typeOf(f.params, f.results));
  const funcTypes = opts.exports.map(([, c]) => typeOf(c.params, c.results));

  const section = (id: number, body: number[]) => {
    const out = [id];
    uleb(out, body.length);
    return out.concat(body);
  };
  const name = (out: number[], s: string) => {
    const b = new TextEncoder().encode(s);
    uleb(out, b.length);
    out.push(...b);
  };
  const vec = <T>(items: T[], each: (out: number[], item: T, i: number) => void) => {
    const out: number[] = [];
    uleb(out, items.length);
    items.forEach((it, i) => each(out, it, i));
    return out;
  };

  const typeSec = vec(types, (out, key) => {
    const [p, r] = key.split(':').map((s) => (s ? s.split(',').map(Number) : []));
    out.push(0x60);
    uleb(out, p.length); out.push(...p);
    uleb(out, r.length); out.push(...r);
  });
  const importSec: number[] = [];
  uleb(importSec, opts.imports.length + 1);
  name(importSec, 'env'); name(importSec, 'memory');
  // Memory limits: flags 3 = shared with a maximum (shared memory requires one); 0 = minimum only.
  if (opts.shared) { importSec.push(0x02, 0x03); uleb(importSec, 1); uleb(importSec, MAX_PAGES); }
  else { importSec.push(0x02, 0x00); uleb(importSec, 1); }
  opts.imports.forEach((f, i) => {
    name(importSec, f.module); name(importSec, f.name);
    importSec.push(0x00); uleb(importSec, importTypes[i]);
  });
  const funcSec = vec(funcTypes, (out, t) => uleb(out, t));
  const exportSec = vec(opts.exports, (out, [n], i) => { name(out, n); out.push(0x00); uleb(out, opts.imports.length + i); });
  const codeSec = vec(opts.exports, (out, [, c]) => out.push(...c.encode()));

  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, typeSec), ...section(2, importSec), ...section(3, funcSec), ...section(7, exportSec), ...section(10, codeSec),
  ]);
}

/** Largest memory in 64 KiB pages (2 GiB): shared memories must declare a maximum. */
export const MAX_PAGES = 32768;
