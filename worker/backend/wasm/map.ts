// Map kernels become one generated WebAssembly loop each: the fused
// expression tree is compiled to straight-line f32x4 code (four elements per
// iteration, a scalar tail), with no per-element calls except for
// transcendentals. int32 maps compute in f64 like the CPU oracle, so every
// int32 result is exact.

import { ELEMENTWISE, type Expr, type MapKernel } from '../kernel.js';
import { Code, F32, F64, I32, V128, assemble, op, simd, type FuncImport, type ValType } from './emit.js';

/**
 * How a view moves along the innermost (collapsed) axis: '0' broadcast, '1' contiguous,
 * 's' any other stride (passed as an argument).
 */
export type StrideKind = '0' | '1' | 's';

type Mode = 'f32' | 'f64' | 'v128';

/** Functions computed by the kernels module (f32 and f32x4) or, for f64, by the oracle's JS twins. */
const CALLED = ['exp', 'log', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'softplus', 'pow'];

export interface MapProgram {
  /** run(ptr_in0, [stride_in0], ..., ptr_out0, [stride_out0], ..., n): strides and pointers in bytes. */
  run: (...args: number[]) => void;
}

/**
 * Generates the loop for `k`'s expressions with the given innermost stride kinds
 * (inputs, then outputs). `kernels` is the instantiated kernels module (its f32/f32x4 math).
 */
export function compileMap(
  k: Pick<MapKernel, 'exprs' | 'dtype' | 'inDtypes'>, inKinds: StrideKind[], outKinds: StrideKind[],
  memory: WebAssembly.Memory, shared: boolean, kernels: WebAssembly.Exports,
): MapProgram {
  const scalar: Mode = k.dtype === 'int32' ? 'f64' : 'f32';
  const vector = scalar === 'f32' && inKinds.every((s) => s !== 's') && outKinds.every((s) => s === '1');

  // Imports: every called function the expressions use, in the modes the loop needs.
  const used = new Set<string>();
  const collect = (e: Expr) => { if ('op' in e) { if (CALLED.includes(e.op)) used.add(e.op); e.args.forEach(collect); } };
  k.exprs.forEach(collect);
  const imports: FuncImport[] = [];
  const importFns: Record<string, Record<string, unknown>> = { env: { memory }, k: {} };
  const callIndex = new Map<string, number>();
  for (const name of used) {
    const arity = ELEMENTWISE[name].js.length;
    const modes: Mode[] = vector ? ['v128', scalar] : [scalar];
    for (const mode of modes) {
      const t: ValType = mode === 'v128' ? V128 : mode === 'f64' ? F64 : F32;
      const exportName = mode === 'f64' ? name : `${name}${mode === 'v128' ? 4 : 1}`;
      callIndex.set(`${name}:${mode}`, imports.length);
      imports.push({ module: 'k', name: exportName, params: new Array(arity).fill(t), results: [t] });
      importFns.k[exportName] = mode === 'f64' ? ELEMENTWISE[name].js : kernels[exportName];
    }
  }

  const params: ValType[] = [];
  const inPtr: number[] = [], inStride: (number | null)[] = [];
  for (const s of inKinds) { inPtr.push(params.push(I32) - 1); inStride.push(s === 's' ? params.push(I32) - 1 : null); }
  const outPtr: number[] = [], outStride: (number | null)[] = [];
  for (const s of outKinds) { outPtr.push(params.push(I32) - 1); outStride.push(s === 's' ? params.push(I32) - 1 : null); }
  const n = params.push(I32) - 1;
  const code = new Code(params, []);
  const i = code.local(I32);

  const gen = new ExprGen(code, callIndex);
  const loop = (mode: Mode) => {
    const width = mode === 'v128' ? 4 : 1;
    const vt: ValType = mode === 'v128' ? V128 : mode === 'f64' ? F64 : F32;
    const values = inKinds.map(() => code.local(vt));
    const results = k.exprs.map(() => code.local(vt));
    const load = (j: number) => {
      code.get(inPtr[j]);
      const isInt = k.inDtypes[j] === 'int32';
      if (mode === 'v128') {
        code.simd(inKinds[j] === '0' ? simd.load32Splat : simd.load, inKinds[j] === '0' ? 2 : 4);
        if (isInt) code.simd(simd.f32x4ConvertI32x4S);
      } else {
        code.mem(isInt ? op.i32Load : op.f32Load, 2);
        if (isInt) code.op(mode === 'f64' ? op.f64ConvertI32S : op.f32ConvertI32S);
        else if (mode === 'f64') code.op(op.f64PromoteF32);
      }
      code.set(values[j]);
    };
    // Broadcast inputs are loaded once, before the loop.
    inKinds.forEach((s, j) => { if (s === '0') load(j); });
    code.op(op.block, 0x40, op.loop, 0x40);
    code.get(i).i32(width).op(op.i32Add).get(n).op(0x4a /* i32.gt_s */).br(op.brIf, 1);
    inKinds.forEach((s, j) => { if (s !== '0') load(j); });
    // Every output is computed before any is stored: outputs may alias inputs.
    k.exprs.forEach((e, j) => { gen.emit(e, mode, values); code.set(results[j]); });
    outKinds.forEach((_, j) => {
      code.get(outPtr[j]).get(results[j]);
      if (mode === 'v128') code.simd(simd.store, 4);
      else if (mode === 'f64') code.op(0xfc, 0x02 /* i32.trunc_sat_f64_s */).mem(op.i32Store, 2);
      else code.mem(op.f32Store, 2);
    });
    const advance = (ptr: number, kind: StrideKind, stride: number | null) => {
      if (kind === '0') return;
      code.get(ptr);
      if (kind === 's') code.get(stride!); else code.i32(4 * width);
      code.op(op.i32Add).set(ptr);
    };
    inKinds.forEach((s, j) => advance(inPtr[j], s, inStride[j]));
    outKinds.forEach((s, j) => advance(outPtr[j], s, outStride[j]));
    code.get(i).i32(width).op(op.i32Add).set(i);
    code.br(op.br, 0).op(op.end, op.end);
  };
  if (vector) loop('v128');
  loop(scalar);

  const bytes = assemble({ shared, imports, exports: [['run', code]] });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), importFns as WebAssembly.Imports);
  return { run: instance.exports.run as (...args: number[]) => void };
}

/** Emits an expression tree's value onto the stack in one mode. */
class ExprGen {
  private temps = new Map<Mode, number[]>();
  private depth = 0;
  constructor(private code: Code, private callIndex: Map<string, number>) {}

  emit(e: Expr, mode: Mode, values: number[]): void {
    const c = this.code;
    if ('in' in e) { c.get(values[e.in]); return; }
    if ('c' in e) { this.constant(e.c, mode); return; }
    const args = () => e.args.forEach((a) => this.emit(a, mode, values));
    const t = mode === 'v128' ? null : mode === 'f64' ? F64T : F32T;
    const simple = (scalarOp: keyof OpTable, vecOp: number) => { args(); if (t) c.op(t[scalarOp]); else c.simd(vecOp); };
    switch (e.op) {
      case 'id': return args();
      case 'neg': return simple('neg', simd.f32x4Neg);
      case 'abs': return simple('abs', simd.f32x4Abs);
      case 'sqrt': return simple('sqrt', simd.f32x4Sqrt);
      case 'floor': return simple('floor', simd.f32x4Floor);
      case 'add': return simple('add', simd.f32x4Add);
      case 'sub': return simple('sub', simd.f32x4Sub);
      case 'mul': return simple('mul', simd.f32x4Mul);
      case 'div': return simple('div', simd.f32x4Div);
      case 'maximum': return simple('max', simd.f32x4Max);
      case 'minimum': return simple('min', simd.f32x4Min);
      case 'recip': this.constant(1, mode); return simple('div', simd.f32x4Div);
      case 'rsqrt': this.constant(1, mode); args(); if (t) c.op(t.sqrt, t.div); else c.simd(simd.f32x4Sqrt).simd(simd.f32x4Div); return;
      case 'relu': {
        // pmax(a, 0) is a < 0 ? 0 : a, so NaN stays NaN, as in PyTorch and the oracle.
        if (!t) { args(); this.constant(0, mode); c.simd(simd.f32x4Pmax); return; }
        // a <= 0 ? 0 : a
        const a = this.temp(mode);
        args(); c.set(a); this.constant(0, mode); c.get(a); c.get(a); this.constant(0, mode); c.op(t.le, op.select);
        return this.release(mode);
      }
      case 'isfinite': {
        // a - a is 0 exactly when a is finite (NaN and infinities give NaN).
        const a = this.temp(mode);
        args(); c.tee(a); c.get(a);
        if (t) { c.op(t.sub); this.constant(0, mode); c.op(t.eq, mode === 'f64' ? op.f64ConvertI32S : op.f32ConvertI32S); }
        else { c.simd(simd.f32x4Sub); this.constant(0, mode); c.simd(simd.f32x4Eq); this.constant(1, mode); c.simd(simd.and); }
        return this.release(mode);
      }
      case 'sign': {
        // a > 0 ? 1 : a < 0 ? -1 : a (keeps 0, -0 and NaN).
        const a = this.temp(mode);
        args(); c.set(a);
        this.constant(1, mode); this.constant(-1, mode); c.get(a);
        if (t) { c.get(a); this.constant(0, mode); c.op(t.lt, op.select); c.get(a); this.constant(0, mode); c.op(t.gt, op.select); }
        else { c.get(a); this.constant(0, mode); c.simd(simd.f32x4Lt).simd(simd.bitselect).get(a); this.constant(0, mode); c.simd(simd.f32x4Gt).simd(simd.bitselect); }
        return this.release(mode);
      }
      case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
        args();
        if (t) { c.op(t[e.op], mode === 'f64' ? op.f64ConvertI32S : op.f32ConvertI32S); return; }
        c.simd(VEC_CMP[e.op]); this.constant(1, mode); c.simd(simd.and);
        return;
      }
      case 'where': {
        // where(cond, a, b) = cond != 0 ? a : b
        this.emit(e.args[1], mode, values); this.emit(e.args[2], mode, values); this.emit(e.args[0], mode, values); this.constant(0, mode);
        if (t) c.op(t.ne, op.select); else c.simd(simd.f32x4Ne).simd(simd.bitselect);
        return;
      }
    }
    const fn = this.callIndex.get(`${e.op}:${mode}`);
    if (fn === undefined) throw new Error(`wasm backend: unknown elementwise op '${e.op}'`);
    args();
    c.call(fn);
  }

  private constant(v: number, mode: Mode) {
    if (mode === 'f64') this.code.f64(v);
    else { this.code.f32(v); if (mode === 'v128') this.code.simd(simd.f32x4Splat); }
  }

  /** A scratch local for nested uses (a stack per mode, reused across the tree). */
  private temp(mode: Mode): number {
    const list = this.temps.get(mode) ?? [];
    this.temps.set(mode, list);
    const key = this.depth++;
    while (list.length <= key) list.push(this.code.local(mode === 'v128' ? V128 : mode === 'f64' ? F64 : F32));
    return list[key];
  }
  private release(_mode: Mode) { this.depth--; }
}

type OpTable = Record<'neg' | 'abs' | 'sqrt' | 'floor' | 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', number>;
const F32T: OpTable = { neg: op.f32Neg, abs: op.f32Abs, sqrt: op.f32Sqrt, floor: op.f32Floor, add: op.f32Add, sub: op.f32Sub, mul: op.f32Mul, div: op.f32Div, max: op.f32Max, min: op.f32Min, eq: op.f32Eq, ne: op.f32Ne, lt: op.f32Lt, le: op.f32Le, gt: op.f32Gt, ge: op.f32Ge };
const F64T: OpTable = { neg: op.f64Neg, abs: op.f64Abs, sqrt: op.f64Sqrt, floor: op.f64Floor, add: op.f64Add, sub: op.f64Sub, mul: op.f64Mul, div: op.f64Div, max: op.f64Max, min: op.f64Min, eq: op.f64Eq, ne: op.f64Ne, lt: op.f64Lt, le: op.f64Le, gt: op.f64Gt, ge: op.f64Ge };
const VEC_CMP: Record<string, number> = { eq: simd.f32x4Eq, ne: simd.f32x4Ne, lt: simd.f32x4Lt, le: simd.f32x4Le, gt: simd.f32x4Gt, ge: simd.f32x4Ge };
