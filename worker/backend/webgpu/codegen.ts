// Turns kernel descriptions into WGSL (from the templates in shaders/) plus
// the u32 parameter words and workgroup counts for one dispatch.

import type { DType } from '../../../lib/shape.js';
import type { Storage } from '../backend.js';
import { ELEMENTWISE, activationExpr, operandStorages, type AttentionKernel, type CellSource, type CellTarget, type ClassesKernel, type ConvKernel, type PoolKernel, type View, type Expr, type GatherKernel, type Kernel, type MapKernel, type MatmulKernel, type MultiMapKernel, type ReduceKernel, type ScanKernel } from '../kernel.js';
import common from '../../../shaders/common.wgsl';
import elementwise from '../../../shaders/elementwise.wgsl';
import foreachSrc from '../../../shaders/optim_foreach.wgsl';
import mathFns from '../../../shaders/math.wgsl';
import reduceSrc from '../../../shaders/reduce.wgsl';
import softmaxSrc from '../../../shaders/softmax.wgsl';
import matmulSrc from '../../../shaders/matmul.wgsl';
import matmulDirectSrc from '../../../shaders/matmul_direct.wgsl';
import gatherSrc from '../../../shaders/gather.wgsl';
import randSrc from '../../../shaders/rand.wgsl';
import convSrc from '../../../shaders/conv.wgsl';
import poolSrc from '../../../shaders/pool.wgsl';
import crossEntropySrc from '../../../shaders/cross_entropy.wgsl';
import flagSrc from '../../../shaders/flag.wgsl';
import attentionSrc from '../../../shaders/attention.wgsl';

/** What a kernel's structure compiles to: the same for every kernel with the same key (see kernelKey). */
export interface KernelCode {
  code: string;
  /** For each binding after the uniform block: the index into the kernel's [inputs..., outputs...] buffers. */
  bindings: number[];
  /** Outputs must be zeroed before the dispatch (scatter-add accumulates). */
  clearOutputs?: boolean;
  /** The shader's entry point when it has several variants; 'main' otherwise. */
  entryPoint?: string;
}

/** What changes from dispatch to dispatch of one structure: the u32 parameter words and the grid. */
export interface Launch {
  params: Uint32Array;
  workgroups: [number, number, number];
}

const MAX_GROUPS = 65535;
const wgslType = (d: DType) => (d === 'int32' ? 'i32' : 'f32');
const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

function fill(template: string, subs: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (!(k in subs)) throw new Error(`template placeholder {{${k}}} has no value`);
    return subs[k];
  });
}

/** flag(), which kernels reading indices call on an out-of-range one (shaders/flag.wgsl). */
const flagCode = () => fill(flagSrc, { SITE_WORD: String(GATHER_SITE_WORD) });

/** Prepends the shared prelude sized for `words` parameter words. */
function withPrelude(code: string, words: number) {
  return fill(common, { WORDS4: String(Math.max(1, Math.ceil(words / 4))) }) + '\n' + code;
}

/** Workgroup grid for `groups` workgroups, folding past the per-dimension limit into y. */
function grid(groups: number): [number, number, number] {
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const x = MAX_GROUPS;
  return [x, Math.ceil(groups / x), 1];
}

export function literal(v: number, dtype: DType): string {
  if (dtype === 'int32') return `i32(${Math.max(-2147483648, Math.min(2147483647, Math.trunc(Number.isNaN(v) ? 0 : v)))})`;
  const r = Math.fround(v);
  if (Number.isNaN(r)) return 'sn_nan()';
  if (r === Infinity) return 'sn_inf()';
  if (r === -Infinity) return '(-sn_inf())';
  return `f32(${r})`;
}

function exprCode(e: Expr, dtype: DType): string {
  if ('in' in e) return `v${e.in}`;
  if ('c' in e) return literal(e.c, dtype);
  const def = ELEMENTWISE[e.op];
  if (!def) throw new Error(`unknown elementwise op '${e.op}'`);
  return ((dtype === 'float32' && def.wgslFloat) || def.wgsl)(...e.args.map((a) => exprCode(a, dtype)));
}

export interface CodegenOptions {
  /** A software adapter: prefer kernels without workgroup memory. */
  software: boolean;
  /** Gather kernels: the number their out-of-range flag carries. */
  site?: number;
}

/**
 * The kernel's structure as a string, computed without generating WGSL: kernels with equal keys
 * share one KernelCode, so codegen and pipeline creation run once per structure. It names
 * everything generate() reads from the kernel besides the parameter words.
 */
export function kernelKey(k: Kernel, inputs: Storage[], outputs: Storage[], bufs: GPUBuffer[], opts: CodegenOptions): string {
  switch (k.kind) {
    case 'map': {
      const dtypes = [...inputs, ...outputs].map((s) => s.dtype[0]).join('');
      return `map ${k.dtype} ${k.shape.length} ${inputs.length} ${dtypes} ${distinctBindings(bufs).bindingOf.join(',')} ${JSON.stringify(k.exprs)}`;
    }
    case 'multimap': {
      const { bindingOf } = distinctBindings(bufs);
      const places = k.segments.map((seg) => [...seg.inputs.map((p) => bindingOf[p.storage]), ...seg.outputs.map((p) => bindingOf[inputs.length + p.storage])].join(','));
      return `multimap ${places.join(';')} ${JSON.stringify(k.exprs)}`;
    }
    case 'reduce': {
      const p = k.prologue;
      const fused = p ? ` ${p.shape.length} ${inputs.map((s) => s.dtype[0]).join('')} ${distinctBindings(bufs.slice(0, inputs.length)).bindingOf.join(',')} ${JSON.stringify(p.expr)}` : '';
      return `reduce ${k.op} ${k.dtype} ${outputs[0].dtype}${fused}`;
    }
    case 'softmax': return `softmax ${k.log}`;
    case 'matmul': {
      const exprs = [k.epilogue, k.aPrologue, k.bPrologue].map((e) => (e ? JSON.stringify(e.expr) : '-')).join(' ');
      const block = opts.software ? ` ${directBlock(k).rows}` : '';
      return `matmul ${operandStorages(k).join(',')} ${!!k.colSums} ${inputs.map((s) => s.dtype[0]).join('')} ${distinctBindings(bufs.slice(0, inputs.length)).bindingOf.join(',')} ${exprs}${block}`;
    }
    case 'gather':
    case 'scatterAdd': return `${k.kind} ${inputs[0].dtype} ${outputs[0].dtype}`;
    case 'rand': return 'rand';
    case 'conv': return `conv ${k.mode} ${k.mode === 'forward' && !!k.bias} ${(k.mode === 'forward' && k.activation) || ''} ${convBlock(k, opts)?.rows ?? 'tiled'}`;
    case 'pool': return `pool ${k.mode}`;
    case 'classes': return `classes ${k.mode} ${k.sparse} ${inputs[1].dtype} ${k.weighted} ${k.reduction === 'none'} ${k.gradConstant === undefined} ${!!k.withGrad}`;
    case 'attention': return `attention ${k.mode} ${k.dims[4]} ${k.dims[5]} ${k.mask} ${k.causal}`;
    case 'scan': {
      const { pass, mode, H, G, reverse, masked, sources, exprs, targets } = k;
      return `scan ${distinctBindings(bufs).bindingOf.join(',')} ${JSON.stringify([pass, mode, H, G, reverse, masked, sources, exprs, targets])}`;
    }
  }
}

export function generate(k: Kernel, inputs: Storage[], outputs: Storage[], bufs: GPUBuffer[], opts: CodegenOptions): KernelCode {
  const words = launch(k, opts).params.length;
  switch (k.kind) {
    case 'map': return mapKernel(k, inputs, outputs, bufs, words);
    case 'multimap': return multiMapKernel(k, inputs, outputs, bufs, words);
    case 'reduce': return reduceKernel(k, inputs, outputs[0], bufs, opts, words);
    case 'softmax': {
      const code = withPrelude(fill(softmaxSrc, { RESULT: k.log ? 'z - logSum' : 'exp(z) / sum' }), words);
      return { code, bindings: [0, 1], ...rowsEntry(opts) };
    }
    case 'matmul': return matmulKernel(k, inputs, bufs, opts, words);
    case 'gather':
    case 'scatterAdd': return gatherKernel(k, inputs[0], outputs[0], words);
    case 'rand': return { code: withPrelude(randSrc, words), bindings: [0] };
    case 'conv': return convCode(k, opts, words);
    case 'pool': return poolCode(k, words);
    case 'classes': return classesCode(k, inputs, words);
    case 'attention': return attentionCode(k, opts, words);
    case 'scan': return scanCode(k, inputs, bufs, opts, words);
  }
}

/** The parameter words and workgroup grid of one dispatch. */
export function launch(k: Kernel, opts: CodegenOptions): Launch {
  switch (k.kind) {
    case 'map': {
      const params = mapWords(k);
      return { params, workgroups: grid(Math.ceil(params[0] / 256)) };
    }
    case 'multimap': {
      const params = multiMapWords(k);
      return { params, workgroups: grid(Math.ceil(params[0] / 256)) };
    }
    case 'reduce':
      return { params: reduceWords(k), workgroups: rowsGrid(k.outer * k.inner, opts) };
    case 'softmax':
      return { params: new Uint32Array([k.outer, k.n, k.inner]), workgroups: rowsGrid(k.outer * k.inner, opts) };
    case 'matmul': {
      const params = matmulWords(k);
      // A tiled workgroup covers 64x64 of C; a direct one 8x8 threads' blocks.
      const block = opts.software ? directBlock(k) : null;
      const [tileM, tileN] = block ? [8 * block.rows, 32 * block.cols4] : [64, 64];
      return { params, workgroups: [Math.ceil(k.n / tileN), Math.ceil(k.m / tileM), k.batch] };
    }
    case 'gather':
    case 'scatterAdd': {
      const rank = k.inputShape.length;
      if (rank > 8) throw new Error(`gather: rank ${rank} exceeds the supported 8`);
      const pad = (s: number[]) => [...s, ...new Array(8 - s.length).fill(1)];
      const total = sizeOfShape(k.indexShape);
      return { params: new Uint32Array([total, rank, k.dim, ...pad(k.inputShape), ...pad(k.indexShape), opts.site ?? 0]), workgroups: grid(Math.ceil(total / 256)) };
    }
    case 'rand': {
      const dist = { uniform: 0, normal: 1, bernoulli: 2 }[k.dist];
      return { params: new Uint32Array([k.size, k.seed >>> 0, k.counter >>> 0, f32Bits(k.p), dist]), workgroups: grid(Math.ceil(k.size / 256)) };
    }
    case 'conv': return convLaunch(k, opts);
    case 'pool': {
      const [n, c, h, w, oh, ow, kh, kw] = k.dims;
      const forward = k.mode === 'max' || k.mode === 'avg';
      // Windows that do not overlap: the grad modes take a thread per window (see shaders/pool.wgsl).
      const tiled = !forward && k.stride[0] >= (kh - 1) * k.dilation[0] + 1 && k.stride[1] >= (kw - 1) * k.dilation[1] + 1;
      const threads = forward || tiled ? n * c * oh * ow : n * c * h * w;
      const view = (v: View) => [v.offset, ...v.strides];
      const written = forward ? k.y : k.dx;
      const channelsInner = +(written.strides[1] === 1 && c > 1);
      const params = new Uint32Array([...k.dims, ...k.stride, ...k.dilation, ...k.pad, ...k.end, +k.countIncludePad, ...view(k.x), ...view(k.y), ...view(k.dx), threads, channelsInner, +tiled]);
      return { params, workgroups: grid(Math.ceil(threads / 256)) };
    }
    case 'classes': {
      const words = new Uint32Array(GATHER_SITE_WORD + 1);
      words.set([k.rows, k.classes, (k.ignoreIndex ?? 0) >>> 0, +(k.ignoreIndex !== null), f32Bits(k.smoothing), ['mean', 'sum', 'none'].indexOf(k.reduction), +k.softmax, f32Bits(k.gradConstant ?? 0), k.targetOffset]);
      words[GATHER_SITE_WORD] = opts.site ?? 0;
      return { params: words, workgroups: [1, 1, 1] };
    }
    case 'attention': {
      const [n, h, l, s, , , ] = k.dims;
      const words = [n, h, l, s, f32Bits(k.scale)];
      for (const v of k.views) words.push(v.offset, ...v.strides);
      const heads = n * h;
      const rows = k.mode === 'gradKV' ? s : l;
      return { params: new Uint32Array(words), workgroups: [Math.ceil(rows / 64), Math.min(heads, MAX_GROUPS), Math.ceil(heads / MAX_GROUPS)] };
    }
    case 'scan': return { params: new Uint32Array([k.T, k.B, ...k.offsets]), workgroups: grid(opts.software ? Math.ceil(k.B / SCAN_ROWS) : k.B) };
  }
}

/** The word a gather kernel's flag site sits at (see gatherKernel's parameters). */
export const GATHER_SITE_WORD = 19;

/** One binding per distinct buffer: WebGPU forbids binding a buffer both read-only and writable in one dispatch. */
function distinctBindings(bufs: GPUBuffer[]) {
  const unique: number[] = [];
  const bindingOf = bufs.map((b, i) => {
    const j = unique.findIndex((u) => bufs[u] === b);
    if (j >= 0) return j;
    unique.push(i);
    return unique.length - 1;
  });
  return { unique, bindingOf };
}

const REDUCE_WORDS = 4;

/** [outer, n, inner, scale], then the prologue's shape and each view's offset and strides. */
function reduceWords(k: ReduceKernel): Uint32Array {
  const words = [k.outer, k.n, k.inner, f32Bits(k.scale)];
  if (k.prologue) {
    words.push(...k.prologue.shape);
    for (const v of k.prologue.inputs) words.push(v.offset, ...v.strides);
  }
  return new Uint32Array(words);
}

const MATMUL_WORDS = 12;

/** The operands' layout, then each view's offset and [batch, row, col] strides: the epilogue's, A's prologue's, B's prologue's. */
function matmulWords(k: MatmulKernel): Uint32Array {
  const { a, b } = k;
  const words = [k.batch, k.m, k.n, k.k, a.offset, a.batchStride, a.rowStride, a.colStride, b.offset, b.batchStride, b.rowStride, b.colStride];
  for (const v of matmulViews(k)) words.push(v.offset, ...v.strides);
  return new Uint32Array(words);
}

const matmulViews = (k: MatmulKernel) => [...(k.epilogue?.inputs ?? []), ...(k.aPrologue?.inputs ?? []), ...(k.bPrologue?.inputs ?? [])];

/** [size, ...shape], then each view's offset and strides (inputs, then outputs). */
function mapWords(k: MapKernel): Uint32Array {
  const words = [sizeOfShape(k.shape), ...k.shape];
  for (const v of [...k.inputs, ...k.outputs]) words.push(v.offset, ...v.strides);
  return new Uint32Array(words);
}

function mapKernel(k: MapKernel, inputs: Storage[], outputs: Storage[], bufs: GPUBuffer[], words: number): KernelCode {
  const rank = k.shape.length;
  const T = wgslType(k.dtype);
  const { unique, bindingOf } = distinctBindings(bufs);
  const written = new Set(outputs.map((_, j) => bindingOf[inputs.length + j]));
  const storages = [...inputs, ...outputs];
  const bindings = unique
    .map((i, b) => `@group(0) @binding(${b + 1}) var<storage, ${written.has(b) ? 'read_write' : 'read'}> b${b}: array<${wgslType(storages[i].dtype)}>;`)
    .join('\n');

  // Word layout as mapWords: each view's offset, then its strides.
  const views = [...k.inputs, ...k.outputs];
  const viewBase = views.map((_, i) => 1 + rank + i * (1 + rank));
  let offsets = views.map((_, i) => `  var o${i} = u(${viewBase[i]}u);`).join('\n');
  for (let d = rank - 1; d >= 0; d--) {
    offsets += `\n  { let n = u(${1 + d}u); let c = rem % n; rem = rem / n;`;
    offsets += views.map((_, i) => ` o${i} += c * u(${viewBase[i] + 1 + d}u);`).join('');
    offsets += ' }';
  }
  const reads = k.inputs.map((_, i) => `  let v${i} = ${T}(b${bindingOf[i]}[o${i}]);`).join('\n');
  const results = k.exprs.map((e, j) => `  let r${j} = ${exprCode(e, k.dtype)};`).join('\n');
  const writes = k.outputs
    .map((_, j) => {
      const vi = inputs.length + j;
      return `  b${bindingOf[vi]}[o${vi}] = ${wgslType(outputs[j].dtype)}(r${j});`;
    })
    .join('\n');
  const code = withPrelude(mathFns + fill(elementwise, { BINDINGS: bindings, OFFSETS: offsets, BODY: [reads, results, writes].join('\n') }), words);
  return { code, bindings: unique };
}

/** [total, then per segment: its end, its cols, then each slot's offset, row and col strides (inputs, then outputs)]. */
function multiMapWords(k: MultiMapKernel): Uint32Array {
  const words = [0];
  for (const seg of k.segments) {
    words[0] += seg.rows * seg.cols;
    words.push(words[0], seg.cols);
    for (const p of [...seg.inputs, ...seg.outputs]) words.push(p.offset, ...p.strides);
  }
  return new Uint32Array(words);
}

function multiMapKernel(k: MultiMapKernel, inputs: Storage[], outputs: Storage[], bufs: GPUBuffer[], words: number): KernelCode {
  const { unique, bindingOf } = distinctBindings(bufs);
  const written = new Set(outputs.map((_, j) => bindingOf[inputs.length + j]));
  const bindings = unique
    .map((_, b) => `@group(0) @binding(${b + 1}) var<storage, ${written.has(b) ? 'read_write' : 'read'}> b${b}: array<f32>;`)
    .join('\n');
  const slotCount = k.segments.length ? k.segments[0].inputs.length : 0;
  const per = 2 + 3 * (slotCount + k.exprs.length);
  // A switch over the segment, found by scanning the ends (an else-if chain would hit WGSL's chaining limit).
  const segments = k.segments.map((seg, s) => {
    const base = 1 + s * per;
    const at = (j: number) => `u(${base + 2 + 3 * j}u) + r * u(${base + 3 + 3 * j}u) + c * u(${base + 4 + 3 * j}u)`;
    const reads = seg.inputs.map((p, j) => `b${bindingOf[p.storage]}[${at(j)}]`);
    const writes = seg.outputs.map((p, j) => `      b${bindingOf[inputs.length + p.storage]}[${at(slotCount + j)}] = v.r${j};`);
    return `    case ${s}u: {\n      let r = i / u(${base + 1}u);\n      let c = i - r * u(${base + 1}u);\n      let v = sn_update(${reads.join(', ')});\n${writes.join('\n')}\n    }`;
  });
  const find = `  var s = 0u;\n  loop { if (idx < u(1u + s * ${per}u)) { break; } s++; }\n  let i = idx - select(0u, u(1u + (s - 1u) * ${per}u), s > 0u);\n  switch s {\n${segments.join('\n')}\n    default: {}\n  }`;
  const code = withPrelude(mathFns + fill(foreachSrc, {
    BINDINGS: bindings,
    FIELDS: k.exprs.map((_, j) => `r${j}: f32,`).join(' '),
    ARGS: Array.from({ length: slotCount }, (_, i) => `v${i}: f32`).join(', '),
    BODY: `${k.exprs.map((e, j) => `  let r${j} = ${exprCode(e, 'float32')};`).join('\n')}\n  return Results(${k.exprs.map((_, j) => `r${j}`).join(', ')});`,
    SEGMENTS: find,
  }), words);
  return { code, bindings: unique };
}

/** D[col] = the sum over K of B's column col, for the columns a thread owns (MatmulKernel.colSums). */
const COL_SUMS_FN = [
  'fn col_sums(first: u32, count: u32, step: u32) {',
  '  let N = u(2u); let K = u(3u);',
  '  for (var i = 0u; i < count; i++) {',
  '    let col = first + i * step;',
  '    if (col >= N) { return; }',
  '    var s = 0.0;',
  '    for (var k = 0u; k < K; k++) { s += load_b(u(8u) + k * u(10u) + col * u(11u), 0u, k, col); }',
  '    D[col] = s;',
  '  }',
  '}',
];

function matmulKernel(k: MatmulKernel, inputs: Storage[], bufs: GPUBuffer[], opts: CodegenOptions, words: number): KernelCode {
  // Storages in order: A's (one, or its prologue's), B's, the epilogue's; one binding per distinct buffer, then C.
  const [na, nb] = operandStorages(k);
  const { unique, bindingOf } = distinctBindings(bufs.slice(0, inputs.length));
  const bindings = [
    ...unique.map((i, j) => `@group(0) @binding(${1 + j}) var<storage, read> S${j}: array<${wgslType(inputs[i].dtype)}>;`),
    `@group(0) @binding(${1 + unique.length}) var<storage, read_write> C: array<f32>;`,
    ...(k.colSums ? [`@group(0) @binding(${2 + unique.length}) var<storage, read_write> D: array<f32>;`] : []),
  ].join('\n');
  // View j of the epilogue and prologues has its words at MATMUL_WORDS + 4 j.
  let view = 0;
  const reads = (from: number, count: number, first: number, coords: string) => Array.from({ length: count }, (_, i) => {
    const w = MATMUL_WORDS + 4 * view++;
    return `  let v${i + first} = f32(S${bindingOf[from + i]}[u(${w}u) + batch * u(${w + 1}u) + ${coords.split(',')[0]} * u(${w + 2}u) + ${coords.split(',')[1]} * u(${w + 3}u)]);`;
  });
  const extra = inputs.length - na - nb;
  const epilogueReads = reads(na + nb, extra, 1, 'row,col');
  const load = (name: string, p: MatmulKernel['aPrologue'], from: number, count: number, coords: string) => [
    `fn ${name}(i: u32, batch: u32, ${coords.split(',').map((c) => `${c}: u32`).join(', ')}) -> f32 {`,
    ...(p ? [...reads(from, count, 0, coords), `  return ${exprCode(p.expr, 'float32')};`] : [`  return f32(S${bindingOf[from]}[i]);`]),
    '}',
  ];
  const code = [
    k.epilogue || k.aPrologue || k.bPrologue ? mathFns : '',
    'fn epilogue(acc: f32, batch: u32, row: u32, col: u32) -> f32 {',
    '  let v0 = acc;',
    ...epilogueReads,
    `  return ${k.epilogue ? exprCode(k.epilogue.expr, 'float32') : 'v0'};`,
    '}',
    ...load('load_a', k.aPrologue, 0, na, 'row,kk'),
    ...load('load_b', k.bPrologue, na, nb, 'kk,col'),
    ...(k.colSums ? COL_SUMS_FN : []),
  ].join('\n');
  const block = directBlock(k);
  // The threads of the first row block sum the columns they own (batch 1): `count` columns from `first`, `step` apart.
  const colSums = !k.colSums ? '' : opts.software ? `if (r0 == 0u) { col_sums(c0, ${4 * block.cols4}u, 1u); }` : 'if (row0 == 0u && lid.y == 0u) { col_sums(col0 + lid.x, 4u, 16u); }';
  const shader = withPrelude(opts.software
    ? fill(matmulDirectSrc, { BINDINGS: bindings, EPILOGUE: code, COL_SUMS: colSums, ...directBlockCode(block) })
    : fill(matmulSrc, { BINDINGS: bindings, EPILOGUE: code, COL_SUMS: colSums }), words);
  return { code: shader, bindings: [...unique, inputs.length, ...(k.colSums ? [inputs.length + 1] : [])] };
}

/** A direct kernel thread's block of C: `rows` rows by 4 `cols4` columns. */
interface Block { rows: number; cols4: number }

/**
 * A direct kernel thread's block of C (matmul, conv): 8 rows by 8 columns where the output
 * has enough of them to keep 64 threads busy, else 4 by 4. Measured on SwiftShader
 * (bench/NOTES.md): 8x8 runs the seed MLP's GEMMs about twice as fast as 4x4, but a small
 * output such as [128, 10] then has too few threads.
 */
function blockFor(m: number, n: number, count: number): Block {
  return Math.ceil(m / 8) * Math.ceil(n / 8) * count >= 64 ? { rows: 8, cols4: 2 } : { rows: 4, cols4: 1 };
}

const directBlock = (k: MatmulKernel) => blockFor(k.m, k.n, k.batch);

/** matmul_direct.wgsl's statements for a block of `rows` x 4 `cols4`, one vec4 accumulator per row and 4 columns. */
function directBlockCode({ rows, cols4 }: Block): Record<string, string> {
  const R = Array.from({ length: rows }, (_, i) => i);
  const V = Array.from({ length: cols4 }, (_, v) => v);
  const cols = Array.from({ length: 4 * cols4 }, (_, j) => j);
  const setup = [
    ...R.map((i) => `  let ar${i} = min(r0 + ${i}u, M - 1u); let ap${i} = aBase + ar${i} * aRow;`),
    ...cols.map((j) => `  let bc${j} = min(c0 + ${j}u, N - 1u); let bp${j} = bBase + bc${j} * bCol;`),
    ...R.flatMap((i) => V.map((v) => `  var acc${i}_${v} = vec4<f32>(0.0);`)),
  ];
  const step = [
    '      let ak = k * aCol; let bk = k * bRow;',
    ...V.map((v) => `      let b${v} = vec4<f32>(${[0, 1, 2, 3].map((j) => `load_b(bp${4 * v + j} + bk, batch, k, bc${4 * v + j})`).join(', ')});`),
    ...R.flatMap((i) => [
      `      let a${i} = vec4<f32>(load_a(ap${i} + ak, batch, ar${i}, k));`,
      ...V.map((v) => `      acc${i}_${v} = fma(a${i}, b${v}, acc${i}_${v});`),
    ]),
  ];
  const store = R.flatMap((i) => V.map((v) => `  store_row(base, batch, r0 + ${i}u, c0 + ${4 * v}u, M, N, acc${i}_${v});`));
  return { ROWS: String(rows), COLS: String(4 * cols4), SETUP: setup.join('\n'), STEP: step.join('\n'), STORE: store.join('\n') };
}

/** The bias + activation store of conv kernels; `index` names the bias element. */
function epilogueFn(bias: boolean, activation: ConvKernel['activation']) {
  return [
    activation ? mathFns : '',
    'fn epilogue(acc: f32, index: u32) -> f32 {',
    `  let v0 = ${bias ? 'acc + Bias[index]' : 'acc'};`,
    `  return ${activation ? exprCode(activationExpr(activation), 'float32') : 'v0'};`,
    '}',
  ].join('\n');
}

/** The mode's implicit GEMM per group, [M, NC] (see shaders/conv.wgsl). */
function convGemm(k: ConvKernel): [number, number] {
  const [n, c, h, w, o, oh, ow, kh, kw] = k.dims;
  const cg = c / k.groups;
  const og = o / k.groups;
  return k.mode === 'forward' ? [n * oh * ow, og] : k.mode === 'gradInput' ? [n * h * w, cg] : [og, cg * kh * kw];
}

/** conv.wgsl's direct entry's block per thread on software adapters; GPUs run the tiled entry (null). */
function convBlock(k: ConvKernel, opts: CodegenOptions): Block | null {
  if (!opts.software) return null;
  const [m, nc] = convGemm(k);
  return blockFor(m, nc, k.groups);
}

/** conv.wgsl's direct statements for a block of `rows` x 4 `cols4` (vec4 accumulators as in directBlockCode). */
function convBlockCode(mode: ConvKernel['mode'], { rows, cols4 }: Block): Record<string, string> {
  const R = Array.from({ length: rows }, (_, i) => i);
  const RG = Array.from({ length: rows / 4 }, (_, g) => g);
  const V = Array.from({ length: cols4 }, (_, v) => v);
  const cols = Array.from({ length: 4 * cols4 }, (_, j) => j);
  const four = (f: (e: number) => string) => [0, 1, 2, 3].map(f).join(', ');
  const lane = 'xyzw';
  const setup = [
    ...R.map((i) => `  let row${i} = ${mode}_row(G, min(r0 + ${i}u, M - 1u));`),
    ...cols.map((j) => `  let col${j} = ${mode}_col(G, min(c0 + ${j}u, NC - 1u));`),
    ...R.flatMap((i) => V.map((v) => `  var acc${i}_${v} = vec4<f32>(0.0);`)),
  ];
  const tap = [
    ...R.map((i) => `    let a${i} = ${mode}_a(G, row${i}, t);`),
    ...cols.map((j) => `    let b${j} = ${mode}_b(G, col${j}, t);`),
    ...RG.map((g) => `    let okA${g} = vec4<bool>(${four((e) => `a${4 * g + e}.ok`)});`),
    ...V.map((v) => `    let okB${v} = vec4<bool>(${four((e) => `b${4 * v + e}.ok`)});`),
  ];
  const skip = `!(${RG.map((g) => `any(okA${g})`).join(' || ')}) || !(${V.map((v) => `any(okB${v})`).join(' || ')})`;
  const addresses = [
    ...RG.map((g) => `    var pa${g} = vec4<u32>(${four((e) => `a${4 * g + e}.addr`)});`),
    ...V.map((v) => `    var pb${v} = vec4<u32>(${four((e) => `b${4 * v + e}.addr`)});`),
  ];
  const step = [
    ...V.map((v) => `      let inB${v} = okB${v} & vec4<bool>(${four((e) => `${mode}_in(G, col${4 * v + e}, l)`)});`),
    ...V.map((v) => `      let vb${v} = select(vec4<f32>(0.0), vec4<f32>(${four((e) => `${mode}_B(pb${v}.${lane[e]})`)}), inB${v});`),
    ...RG.map((g) => `      let va${g} = select(vec4<f32>(0.0), vec4<f32>(${four((e) => `${mode}_A(pa${g}.${lane[e]})`)}), okA${g});`),
    ...R.flatMap((i) => V.map((v) => `      acc${i}_${v} = fma(vec4<f32>(va${i >> 2}.${lane[i & 3]}), vb${v}, acc${i}_${v});`)),
    ...RG.map((g) => `      pa${g} += vec4<u32>(steps.x);`),
    ...V.map((v) => `      pb${v} += vec4<u32>(steps.y);`),
  ];
  const store = R.flatMap((i) => V.map((v) => `  store_row(G, r0 + ${i}u, c0 + ${4 * v}u, M, NC, acc${i}_${v});`));
  return { ROWS: String(rows), COLS: String(4 * cols4), SETUP: setup.join('\n'), TAP: tap.join('\n'), SKIP: skip, ADDRESSES: addresses.join('\n'), STEP: step.join('\n'), STORE: store.join('\n') };
}

function convLaunch(k: ConvKernel, opts: CodegenOptions): Launch {
  const [, c, , , o] = k.dims;
  const chunks = k.mode === 'gradWeight' ? k.chunks ?? 1 : 1;
  const view = (v: ConvKernel['x']) => [v.offset, ...v.strides];
  const params = new Uint32Array([
    ...k.dims, ...k.stride, ...k.dilation, ...k.pad, c / k.groups, o / k.groups,
    ...view(k.x), ...view(k.w), ...view(k.y), k.groups, chunks, chunks > 1 ? o * (c / k.groups) * k.dims[7] * k.dims[8] : 0,
  ]);
  const [m, nc] = convGemm(k);
  // A tiled workgroup covers 64x64 of C; a direct one 8x8 threads' blocks.
  const block = convBlock(k, opts);
  const [tileM, tileN] = block ? [8 * block.rows, 32 * block.cols4] : [64, 64];
  // Row tiles past the y limit go to further slabs along z (see shaders/conv.wgsl).
  const rowTiles = Math.ceil(m / tileM);
  const y = Math.min(rowTiles, MAX_GROUPS);
  const slabs = y ? Math.ceil(rowTiles / y) : 0;
  if (k.groups * slabs * chunks > MAX_GROUPS) throw new Error(`conv2d: ${k.groups} groups of ${m} rows exceed one dispatch`);
  return { params, workgroups: [Math.ceil(nc / tileN), y, k.groups * slabs * chunks] };
}

function convCode(k: ConvKernel, opts: CodegenOptions, words: number): KernelCode {
  const bias = k.mode === 'forward' && !!k.bias;
  const bindings = [
    bias ? '@group(0) @binding(3) var<storage, read> Bias: array<f32>;' : '',
    `@group(0) @binding(${bias ? 4 : 3}) var<storage, read_write> Out: array<f32>;`,
  ].join('\n');
  const epilogue = epilogueFn(bias, k.mode === 'forward' ? k.activation : null);
  const block = convBlock(k, opts);
  // GPUs run `tiled`; the unused direct entry is filled with the small block to stay valid WGSL.
  const code = withPrelude(fill(convSrc, { BINDINGS: bindings, EPILOGUE: epilogue, MODE: k.mode, ...convBlockCode(k.mode, block ?? { rows: 4, cols4: 1 }) }), words);
  return { code, bindings: bias ? [0, 1, 2, 3] : [0, 1, 2], entryPoint: block ? 'direct' : 'tiled' };
}

/** Bindings per mode ([inputs..., output]); read_x and read_dy reach the storages the mode has (shaders/pool.wgsl). */
function poolCode(k: PoolKernel, words: number): KernelCode {
  const reads = k.mode === 'maxGrad' ? ['X', 'DY'] : k.mode === 'avgGrad' ? ['DY'] : ['X'];
  const decls = reads.map((name, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${name}: array<f32>;`);
  decls.push(`@group(0) @binding(${reads.length + 1}) var<storage, read_write> Out: array<f32>;`);
  // A mode without one of them never calls its reader (the other modes' functions still name it).
  for (const name of ['X', 'DY']) decls.push(`fn read_${name.toLowerCase()}(i: u32) -> f32 { return ${reads.includes(name) ? `${name}[i]` : '0.0'}; }`);
  const code = withPrelude(fill(poolSrc, { BINDINGS: decls.join('\n'), MODE: k.mode }), words);
  return { code, bindings: reads.map((_, i) => i).concat(reads.length) };
}

/**
 * Bindings X, Targets, W (weighted), G (grad), Out or GradOut (both: a loss with its gradient) and the
 * flag buffer (loss and grad: out-of-range targets), as cross_entropy.wgsl expects.
 */
function classesCode(k: ClassesKernel, storages: Storage[], words: number): KernelCode {
  const inputs = storages.length;
  const T = wgslType(storages[1].dtype);
  const decls = [
    '@group(0) @binding(1) var<storage, read> X: array<f32>;',
    `@group(0) @binding(2) var<storage, read> Targets: array<${T}>;`,
    // Targets start at a word of their own (a batch's rows of a fit's data, read in place).
    `fn tgt(i: u32) -> ${T} { return Targets[u(8u) + i]; }`,
  ];
  const bindings = [0, 1];
  const bind = (decl: string, index: number) => decls.push(`@group(0) @binding(${bindings.push(index)}) ${decl}`);
  const weighted = k.weighted && k.mode !== 'hits';
  if (weighted) bind('var<storage, read> W: array<f32>;', 2);
  const readsG = k.mode === 'grad' && k.gradConstant === undefined;
  if (readsG) bind('var<storage, read> G: array<f32>;', inputs - 1);
  // Storages a mode does not write are declared for the shared code, left out of its layout (bindings 8 and 9).
  const out = 'var<storage, read_write> Out: array<f32>;';
  const gradOut = 'var<storage, read_write> GradOut: array<f32>;';
  const withGrad = k.mode === 'loss' && !!k.withGrad;
  if (k.mode === 'grad') {
    bind(gradOut, inputs);
    decls.push(`@group(0) @binding(9) ${out}`);
  } else {
    bind(out, inputs);
    if (withGrad) bind(gradOut, inputs + 1);
    else decls.push(`@group(0) @binding(9) ${gradOut}`);
  }
  const err = 'var<storage, read_write> err: array<atomic<i32>, 4>;';
  // Accuracy reads no flags.
  if (k.mode !== 'hits') bind(err, inputs + (withGrad ? 2 : 1));
  else decls.push(`@group(0) @binding(8) ${err}`);
  decls.push(
    `const SPARSE = ${k.sparse};`,
    // Only a loss that writes its gradient refers to GradOut (a binding then).
    `fn loss_grad(t: u32, all: f32) { ${withGrad ? 'grad_rows(t, all);' : ''} }`,
    `fn weight(c: u32) -> f32 { return ${weighted ? 'W[c]' : '1.0'}; }`,
    // The loss kernel's gradient is for an incoming gradient of 1.
    `fn gscale(r: u32) -> f32 { return ${k.mode === 'loss' ? '1.0' : !readsG ? 'bitcast<f32>(u(7u))' : k.reduction === 'none' ? 'G[r]' : 'G[0]'}; }`,
  );
  const code = withPrelude(fill(crossEntropySrc, { BINDINGS: decls.join('\n'), FLAG: flagCode() }), words);
  return { code, bindings, entryPoint: k.mode };
}

/** Each mode's storages ([inputs..., outputs...]) by the names shaders/attention.wgsl reads them by; the names with a view come first, in views order. */
const ATTENTION_BUFFERS: Record<AttentionKernel['mode'], { read: string[]; written: string[]; unviewed?: string }> = {
  forward: { read: ['Q', 'K', 'V', 'M'], written: ['O'] },
  gradQ: { read: ['Q', 'K', 'V', 'M', 'O', 'G'], written: ['GQ', 'ST'], unviewed: 'ST' },
  gradKV: { read: ['Q', 'K', 'V', 'M', 'G', 'ST'], written: ['GK', 'GV'], unviewed: 'ST' },
};

/**
 * How the other side's rows reach the threads (kt/vt for keys and values; qt/gt/lse_at/delta_at
 * for queries): staged through workgroup memory a tile at a time, or on software adapters read
 * straight from storage (no barriers, which SwiftShader runs slowly).
 */
function attentionStaging(software: boolean) {
  if (software) {
    const staged = 'var<private> staged: vec3<u32>;';
    const row = (view: string, c: string, d: string) => `${view}[at(V_${view}, staged.x, staged.y, staged.z + ${c}, ${d})]`;
    const stat = (k: number) => `ST[2u * ((staged.x * u(1u) + staged.y) * u(2u) + staged.z + c) + ${k}u]`;
    return {
      keys: [staged,
        `fn kt(c: u32, d: u32) -> f32 { return ${row('K', 'c', 'd')}; }`,
        `fn vt(c: u32, e: u32) -> f32 { return ${row('V', 'c', 'e')}; }`,
        'fn stage_keys(n: u32, h: u32, j0: u32, t: u32, values: bool) { staged = vec3<u32>(n, h, j0); }'].join('\n'),
      queries: [staged,
        `fn qt(c: u32, d: u32) -> f32 { return ${row('Q', 'c', 'd')}; }`,
        `fn gt(c: u32, e: u32) -> f32 { return ${row('G', 'c', 'e')}; }`,
        `fn lse_at(c: u32) -> f32 { return ${stat(0)}; }`,
        `fn delta_at(c: u32) -> f32 { return ${stat(1)}; }`,
        'fn stage_queries(n: u32, h: u32, i0: u32, t: u32) { staged = vec3<u32>(n, h, i0); }'].join('\n'),
    };
  }
  /** Rows r0 .. r0 + TILE of a view into workgroup memory, the last row repeated past `count`. */
  const copy = (dst: string, view: string, width: string, count: string, r0: string) =>
    `  for (var e = t; e < TILE * ${width}; e += ROWS) { ${dst}[e] = ${view}[at(V_${view}, n, h, min(${r0} + e / ${width}, ${count} - 1u), e % ${width})]; }`;
  return {
    keys: [
      'var<workgroup> Kt: array<f32, TILE * QK>;',
      'var<workgroup> Vt: array<f32, TILE * VF>;',
      'fn kt(c: u32, d: u32) -> f32 { return Kt[c * QK + d]; }',
      'fn vt(c: u32, e: u32) -> f32 { return Vt[c * VF + e]; }',
      'fn stage_keys(n: u32, h: u32, j0: u32, t: u32, values: bool) {',
      '  workgroupBarrier();',
      copy('Kt', 'K', 'QK', 'u(3u)', 'j0'),
      `  if (values) {\n${copy('Vt', 'V', 'VF', 'u(3u)', 'j0')}\n  }`,
      '  workgroupBarrier();',
      '}'].join('\n'),
    queries: [
      'var<workgroup> Qt: array<f32, TILE * QK>;',
      'var<workgroup> Gt: array<f32, TILE * VF>;',
      'var<workgroup> Lt: array<f32, TILE>;',
      'var<workgroup> Dt: array<f32, TILE>;',
      'fn qt(c: u32, d: u32) -> f32 { return Qt[c * QK + d]; }',
      'fn gt(c: u32, e: u32) -> f32 { return Gt[c * VF + e]; }',
      'fn lse_at(c: u32) -> f32 { return Lt[c]; }',
      'fn delta_at(c: u32) -> f32 { return Dt[c]; }',
      'fn stage_queries(n: u32, h: u32, i0: u32, t: u32) {',
      '  workgroupBarrier();',
      copy('Qt', 'Q', 'QK', 'u(2u)', 'i0'),
      copy('Gt', 'G', 'VF', 'u(2u)', 'i0'),
      '  if (t < TILE) {',
      '    let r = (n * u(1u) + h) * u(2u) + min(i0 + t, u(2u) - 1u);',
      '    Lt[t] = ST[2u * r];',
      '    Dt[t] = ST[2u * r + 1u];',
      '  }',
      '  workgroupBarrier();',
      '}'].join('\n'),
  };
}

/**
 * The shader's shared part, then its mode's sections (forward and gradQ share the staging of keys),
 * with the head sizes and the tile as constants: the tile is as long as workgroup memory
 * (16 KiB, WebGPU's guaranteed minimum) holds for the staged rows, up to 32.
 */
function attentionCode(k: AttentionKernel, opts: CodegenOptions, words: number): KernelCode {
  const [, , , , qk, vf] = k.dims;
  let tile = 32;
  while (tile > 1 && tile * (qk + vf + 2) * 4 > 16384) tile /= 2;
  const names = ATTENTION_BUFFERS[k.mode];
  const present = (b: string) => b !== 'M' || k.mask;
  const read = names.read.filter(present);
  const storages = [...read, ...names.written];
  const bindings = storages.map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${i < read.length ? 'read' : 'read_write'}> ${b}: array<f32>;`);
  const viewWords = storages.filter((b) => b !== names.unviewed).map((b, i) => `const V_${b}: u32 = ${5 + 5 * i}u;`);
  const [shared, ...sections] = attentionSrc.split(/^\/\/ mode: (\w+)$/m);
  const section = (name: string) => sections[sections.indexOf(name) + 1];
  const staging = attentionStaging(opts.software);
  const body = k.mode === 'gradKV' ? fill(section('gradKV'), { STAGE_QUERIES: staging.queries }) : fill(section('rows'), { STAGE_KEYS: staging.keys }) + section(k.mode);
  const consts = [`const QK: u32 = ${qk}u;`, `const VF: u32 = ${vf}u;`, `const TILE: u32 = ${tile}u;`, `const CAUSAL: bool = ${k.causal};`];
  const code = withPrelude(unrollFeatureLoops([...bindings, ...viewWords, ...consts, fill(shared, { MASK: k.mask ? '  b += M[at(V_M, n, h, i, j)];' : '' }), body].join('\n'), { QK: qk, VF: vf }), words);
  return { code, bindings: storages.map((_, i) => i) };
}

/**
 * One-line loops over a row's features (`for (var d = 0u; d < QK; d++) { ... }`) written out
 * once per feature with a constant index: SwiftShader keeps an array indexed only by constants
 * in registers, while a loop's variable index sends every access through memory.
 */
function unrollFeatureLoops(code: string, sizes: Record<string, number>): string {
  return code.replace(/for \(var (\w+) = 0u; \1 < (QK|VF); \1\+\+\) \{ (.*) \}$/gm, (_, v: string, size: string, body: string) =>
    Array.from({ length: sizes[size] }, (_, i) => body.replace(new RegExp(`\\b${v}\\b`, 'g'), `${i}u`)).join(' '));
}

/** GPUs: threads per batch row of a scan, each walking the units j = lid, lid + width, ... */
const scanWidth = (H: number) => Math.min(64, Math.ceil(H / 32) * 32);
/** Software adapters: batch rows per workgroup, a thread each. */
const SCAN_ROWS = 4;

/**
 * The whole time loop of a batch row in one workgroup (see ScanKernel). On GPUs its threads
 * share the row's units, and a storage barrier after each step makes its writes (the new
 * state, or the gradient row) visible to the other threads, which read them in the next
 * dot products. Software adapters give each row one thread that walks every unit, with no
 * barriers: SwiftShader's barriers cost more than the row's arithmetic at small sizes.
 */
function scanCode(k: ScanKernel, inputs: Storage[], bufs: GPUBuffer[], opts: CodegenOptions, words: number): KernelCode {
  const { H, G, reverse, sources, exprs, targets } = k;
  const forward = k.pass === 'forward';
  const gru = k.mode === 'gru';
  const WG = scanWidth(H);
  const J = Math.ceil(H / WG);
  const { unique, bindingOf } = distinctBindings(bufs);
  const written = new Set(bufs.map((_, n) => bindingOf[n]).filter((_, n) => n >= inputs.length));
  const decls = unique.map((_, b) => `@group(0) @binding(${b + 1}) var<storage, ${written.has(b) ? 'read_write' : 'read'}> b${b}: array<f32>;`);
  // Buffer n is b{bindingOf[n]} at element offset u(2 + n); roles as ScanKernel lists them.
  const buf = (n: number) => `b${bindingOf[n]}`;
  const off = (n: number) => `o${n}`;
  const nIn = inputs.length;
  const r: Record<string, number> = forward
    ? { xg: 0, whh: 1, bias: 2, mask: gru ? 3 : 2, out: nIn }
    : { grad: 0, saved: 1, whh: 2, mask: 3, dxg: nIn, dhg: gru ? nIn + 1 : nIn, dh0: nIn + (gru ? 2 : 1), dc0: nIn + 2 };
  const at = (name: string, index: string) => `${buf(r[name])}[${off(r[name])} + ${index}]`;
  const state = (name: string, slot: number, i: string) => at(name, `((${slot}u * T1 + ${i}) * B + b) * H + j`);
  const gate = (name: string, col: string) => at(name, `(t * B + b) * GH + ${col}`);
  const read = (src: CellSource): string => {
    switch (src.from) {
      case 'xg': return gate('xg', `${src.gate * H}u + j`);
      case 'hg': return `hg${src.gate}`;
      case 'bias': return at('bias', `${src.gate * H}u + j`);
      case 'mask': return at('mask', 't * B + b');
      case 'state': return state(forward ? 'out' : 'saved', src.slot, src.prev ? 'prev' : 'cur');
      case 'grad': return state('grad', src.slot, 'cur');
      case 'carry': return `carry${src.index}[q]`;
      case 'viaW': return 'via[q]';
    }
  };
  const write = (tg: CellTarget, v: string): string => {
    switch (tg.to) {
      case 'state': return `${state('out', tg.slot, 'cur')} = ${v};`;
      case 'dxg': return `${gate('dxg', `${tg.gate * H}u + j`)} = ${v};`;
      case 'dhg': return `${gate('dhg', `${tg.gate * H}u + j`)} = ${v};`;
      case 'carry': return `carry${tg.index}[q] = ${v};`;
    }
  };
  const gatesRead = [...new Set(sources.flatMap((s) => (s.from === 'hg' ? [s.gate] : [])))];
  const cell = [
    ...(gatesRead.length ? [
      ...gatesRead.map((g) => `      var hg${g} = 0.0;`),
      `      let hRow = ${off(r.out)} + (prev * B + b) * H;`,
      ...gatesRead.map((g) => `      let wRow${g} = ${off(r.whh)} + (${g * H}u + j) * H;`),
      '      for (var i = 0u; i < H; i++) {',
      `        let h = ${buf(r.out)}[hRow + i];`,
      ...gatesRead.map((g) => `        hg${g} += h * ${buf(r.whh)}[wRow${g} + i];`),
      '      }',
    ] : []),
    ...sources.map((src, n) => `      let v${n} = ${read(src)};`),
    ...exprs.map((e, n) => `      let r${n} = ${exprCode(e, 'float32')};`),
    ...targets.map((tg, n) => `      ${write(tg, `r${n}`)}`),
  ];
  const { software } = opts;
  // A unit's loop body sees j and q, the index of the unit's registers (carries, viaW).
  const units = (body: string[]) => software
    ? ['    for (var j = 0u; j < H; j++) {', '      let q = j;', ...body, '    }']
    : [`    for (var q = 0u; q < ${J}u; q++) {`, '      let j = lid.x + q * WG;', '      if (j < H) {', ...body.map((l) => `  ${l}`), '      }', '    }'];
  const registers = software ? H : J;
  const step = [
    `    let t = ${forward === reverse ? 'T - 1u - s' : 's'};`,
    `    let prev = ${reverse ? 't + 1u' : 't'};`,
    `    let cur = ${reverse ? 't' : 't + 1u'};`,
    ...units(cell),
    ...(software ? [] : ['    storageBarrier();']),
  ];
  if (!forward) {
    // The gradient reaching the previous step's h through W_hh, from the row the step just wrote.
    const row = gru ? 'dhg' : 'dxg';
    step.push(...units([
      '      var acc = 0.0;',
      `      let dRow = ${off(r[row])} + (t * B + b) * GH;`,
      `      for (var c = 0u; c < GH; c++) { acc += ${buf(r[row])}[dRow + c] * ${buf(r.whh)}[${off(r.whh)} + c * H + j]; }`,
      '      via[q] = acc;',
    ]));
  }
  const first = reverse ? 'T' : '0u';
  const finish = forward ? [] : units([
    `      ${at('dh0', 'b * H + j')} = (${state('grad', 0, first)} + via[q]) + carry0[q];`,
    ...(k.mode === 'lstm' ? [`      ${at('dc0', 'b * H + j')} = ${state('grad', 1, first)} + carry1[q];`] : []),
  ]);
  const code = [
    mathFns, ...decls,
    `const H = ${H}u;`,
    `const GH = ${G * H}u;`,
    `const WG = ${WG}u;`,
    `@compute @workgroup_size(${software ? SCAN_ROWS : WG})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {',
    '  let T = u(0u);',
    '  let T1 = T + 1u;',
    '  let B = u(1u);',
    ...bufs.map((_, n) => `  let o${n} = u(${2 + n}u);`),
    software ? `  let b = flat_id(gid, nwg, ${SCAN_ROWS}u);` : '  let b = wid.x + wid.y * nwg.x;',
    '  if (b >= B) { return; }',
    ...(forward ? [] : [`  var carry0: array<f32, ${registers}>;`, `  var carry1: array<f32, ${registers}>;`, `  var via: array<f32, ${registers}>;`]),
    '  for (var s = 0u; s < T; s++) {',
    ...step,
    '  }',
    ...finish,
    '}',
  ].join('\n');
  return { code: withPrelude(code, words), bindings: unique };
}

function sizeOfShape(shape: number[]) {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row kernels: a workgroup per row on GPUs, a thread per row on software adapters. */
function rowsEntry(opts: CodegenOptions) {
  return { entryPoint: opts.software ? 'main_direct' : 'main_tree' };
}

function rowsGrid(rows: number, opts: CodegenOptions) {
  return grid(opts.software ? Math.ceil(rows / 64) : rows);
}

/**
 * `fn load(base, o, j)`: element j of reduction o (base: its first element in a contiguous
 * input), from the one input or through the prologue; with the bindings it reads.
 * Word layout as reduceWords.
 */
function loadFn(k: ReduceKernel, inputs: Storage[], bufs: GPUBuffer[]) {
  const T = wgslType(k.dtype);
  if (!k.prologue) {
    return { code: `@group(0) @binding(1) var<storage, read> src: array<${T}>;\nfn load(base: u32, o: u32, j: u32) -> ${T} { return src[base + j * u(2u)]; }`, bindings: [0] };
  }
  const { unique, bindingOf } = distinctBindings(bufs.slice(0, inputs.length));
  const decls = unique.map((i, b) => `@group(0) @binding(${b + 1}) var<storage, read> b${b}: array<${wgslType(inputs[i].dtype)}>;`);
  // The element's index in the prologue's shape, from its flat position, as the map kernel does.
  const { shape, inputs: views } = k.prologue;
  const rank = shape.length;
  const shapeWord = REDUCE_WORDS;
  const viewBase = views.map((_, i) => REDUCE_WORDS + rank + i * (1 + rank));
  const offsets = views.map((_, i) => `  var o${i} = u(${viewBase[i]}u);`);
  for (let d = rank - 1; d >= 0; d--) {
    offsets.push(`  { let n = u(${shapeWord + d}u); let c = rem % n; rem = rem / n;${views.map((_, i) => ` o${i} += c * u(${viewBase[i] + 1 + d}u);`).join('')} }`);
  }
  const reads = views.map((_, i) => `  let v${i} = ${T}(b${bindingOf[i]}[o${i}]);`);
  const code = [
    mathFns, ...decls,
    `fn load(base: u32, o: u32, j: u32) -> ${T} {`,
    '  var rem = base + j * u(2u);',
    ...offsets,
    ...reads,
    `  return ${T}(${exprCode(k.prologue.expr, k.dtype)});`,
    '}',
  ].join('\n');
  return { code, bindings: unique };
}

function reduceKernel(k: ReduceKernel, inputs: Storage[], out: Storage, bufs: GPUBuffer[], opts: CodegenOptions, words: number): KernelCode {
  const T = wgslType(k.dtype);
  const arg = k.op === 'argmax' || k.op === 'argmin';
  const lowest = k.dtype === 'int32' ? 'i32(-2147483647 - 1)' : '(-sn_inf())';
  const highest = k.dtype === 'int32' ? 'i32(2147483647)' : 'sn_inf()';
  const isMax = k.op === 'max' || k.op === 'argmax';
  const subs =
    k.op === 'sum'
      ? {
          CMP: 'false', INIT: `${T}(0)`, ACCUMULATE: 'acc += v;', COMBINE: 'vals[t] = a + b;',
          WRITE: k.dtype === 'int32' ? 'dst[o] = acc;' : 'dst[o] = acc * bitcast<f32>(u(3u));',
        }
      : {
          CMP: isMax ? 'a > b' : 'a < b',
          INIT: isMax ? lowest : highest,
          ACCUMULATE: 'if (better(v, j, acc, best)) { acc = v; best = j; }',
          COMBINE: 'if (better(b, idxs[t + s], a, idxs[t])) { vals[t] = b; idxs[t] = idxs[t + s]; }',
          WRITE: arg ? 'dst[o] = i32(best);' : 'dst[o] = acc;',
        };
  const load = loadFn(k, inputs, bufs);
  const subs2 = { SOURCES: load.code, DST: String(load.bindings.length + 1) };
  const code = withPrelude(fill(reduceSrc, { T, OUT: wgslType(out.dtype), ISNAN: k.dtype === 'int32' ? 'sn_never_nan' : 'sn_isnan', ...subs, ...subs2 }), words);
  return { code, bindings: [...load.bindings, inputs.length], ...rowsEntry(opts) };
}

/** The flag site (see gather.wgsl) is the last parameter word, GATHER_SITE_WORD. */
function gatherKernel(k: GatherKernel, src: Storage, out: Storage, words: number): KernelCode {
  const scatter = k.kind === 'scatterAdd';
  const head = '@compute @workgroup_size(256)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n  let p = flat_id(gid, nwg, 256u);\n  if (p >= u(0u)) { return; }\n';
  const body = scatter
    ? // f32 atomics do not exist in WGSL: add through a compare-exchange loop on the bits.
      '  let t = target_of(p);\n  let v = src[p];\n  var old = atomicLoad(&dst[t]);\n  loop {\n    let r = atomicCompareExchangeWeak(&dst[t], old, bitcast<u32>(bitcast<f32>(old) + v));\n    if (r.exchanged) { break; }\n    old = r.old_value;\n  }\n}'
    : '  dst[p] = src[target_of(p)];\n}';
  const code = withPrelude(fill(gatherSrc, { T: wgslType(src.dtype), OUT: scatter ? 'atomic<u32>' : wgslType(out.dtype), FLAG: flagCode(), KERNEL: head + body }), words);
  // Binding 4 is the flag buffer, which the backend passes after the kernel's own buffers.
  return { code, bindings: [0, 1, 2, 3], clearOutputs: scatter };
}
