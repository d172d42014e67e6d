// Argument normalisation shared by the conv and pooling layers and their
// functional forms.

import type { MaxPool2dOptions } from './functional.js';
import { describe } from '../validate.js';

export type Pair = number | [number, number];

/** A number or [h, w] as [h, w], checked to be integers >= min. */
export function pair(v: Pair, name: string, min = 1): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((Array.isArray(v) && v.length !== 2) || p.some((n) => !Number.isInteger(n) || n < min)) {
    throw new RangeError(`${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** maxPool2d's arguments as pairs, checked (PyTorch allows padding up to half the kernel). */
export function poolParams(kernelSize: Pair, { stride, padding = 0, dilation = 1 }: MaxPool2dOptions = {}) {
  const kernel = pair(kernelSize, 'maxPool2d: kernelSize');
  const pad = pair(padding, 'maxPool2d: padding', 0);
  if (pad[0] > kernel[0] / 2 || pad[1] > kernel[1] / 2) throw new RangeError(`maxPool2d: padding ${JSON.stringify(padding)} must be at most half the kernel size ${JSON.stringify(kernelSize)}`);
  return { kernel, stride: pair(stride ?? kernelSize, 'maxPool2d: stride'), pad, dilation: pair(dilation, 'maxPool2d: dilation') };
}

type Kind = 'count' | 'int' | 'number' | 'boolean' | 'string' | 'pair' | 'padding' | 'numberPair' | 'tensor' | 'function' | 'module' | 'any';
/** An argument's kind; a trailing '?' also allows null (PyTorch's None). */
export type ArgSpec = Record<string, Kind | `${Kind}?`>;

const isInt = (v: unknown) => Number.isInteger(v);
const KINDS: Record<Kind, [string, (v: unknown) => boolean]> = {
  count: ['a positive integer', (v) => isInt(v) && (v as number) > 0],
  int: ['an integer', isInt],
  number: ['a number', (v) => typeof v === 'number' && !Number.isNaN(v)],
  boolean: ['a boolean', (v) => typeof v === 'boolean'],
  string: ['a string', (v) => typeof v === 'string'],
  pair: ['an integer or a pair of integers', (v) => isInt(v) || (Array.isArray(v) && v.length === 2 && v.every(isInt))],
  padding: ["an integer, a pair of integers, 'same' or 'valid'", (v) => v === 'same' || v === 'valid' || KINDS.pair[1](v)],
  numberPair: ['a pair of numbers', (v) => Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')],
  // Duck-typed so this module needs no runtime import of Tensor or Module.
  tensor: ['a Tensor', (v) => typeof v === 'object' && v !== null && 'shape' in v && 'dtype' in v && 'id' in v],
  function: ['a function', (v) => typeof v === 'function'],
  module: ['a Module', (v) => typeof v === 'object' && v !== null && typeof (v as { forward?: unknown }).forward === 'function'],
  any: ['any value', () => true],
};

const isOptionsObject = (v: unknown) => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/**
 * PyTorch's calling convention: `rest` holds the arguments after the required
 * ones, i.e. the optional positionals in PyTorch's order (`positional`) and
 * then, optionally, ONE options object holding any of those by name plus the
 * keyword-only ones (`keywords`). Returns them merged into one object, so a
 * positional argument is never silently ignored: too many arguments, an
 * unknown option, the same argument given twice or a value of the wrong kind
 * throws, naming it.
 */
export function pyArgs<O = Record<string, any>>(where: string, rest: unknown[], positional: ArgSpec, keywords: ArgSpec = {}): O {
  const names = Object.keys(positional);
  const spec: ArgSpec = { ...positional, ...keywords };
  const hasOptions = rest.length > 0 && isOptionsObject(rest[rest.length - 1]);
  const values = hasOptions ? rest.slice(0, -1) : rest;
  const options = (hasOptions ? rest[rest.length - 1] : {}) as Record<string, unknown>;
  const misplaced = values.findIndex(isOptionsObject);
  if (misplaced >= 0) throw new TypeError(`${where}: the options object must be the last argument (found one at argument ${misplaced + 1} after the required ones)`);
  if (values.length > names.length) {
    const extra = values[names.length];
    throw new TypeError(names.length
      ? `${where}: too many positional arguments (${values.length}); after the required ones it takes ${names.join(', ')} in that order, then one options object; got ${describe(extra)} after them`
      : `${where}: after the required arguments it takes one options object { ${Object.keys(spec).join(', ')} }, got ${describe(extra)}`);
  }
  const out: Record<string, unknown> = {};
  values.forEach((v, i) => {
    if (v !== undefined) out[names[i]] = v;
  });
  for (const [k, v] of Object.entries(options)) {
    if (!(k in spec)) throw new TypeError(`${where}: unknown option '${k}'; options are ${Object.keys(spec).join(', ')}`);
    if (k in out) throw new TypeError(`${where}: ${k} given both as a positional argument and as an option`);
    if (v !== undefined) out[k] = v;
  }
  for (const [k, v] of Object.entries(out)) {
    const kind = spec[k];
    const nullable = kind.endsWith('?');
    const [what, ok] = KINDS[kind.replace('?', '') as Kind];
    if (!(ok(v) || (nullable && v === null))) throw new TypeError(`${where}: ${k} must be ${what}${nullable ? ' or null' : ''}, got ${describe(v)}`);
  }
  return out as O;
}

/** Checks the required arguments: { name: [value, kind] }. */
export function requireArgs(where: string, args: Record<string, [unknown, Kind]>) {
  for (const [k, [v, kind]] of Object.entries(args)) {
    const [what, ok] = KINDS[kind];
    if (!ok(v)) throw new TypeError(`${where}: ${k} must be ${what}, got ${v === undefined ? 'nothing' : describe(v)}`);
  }
}

/**
 * For calls whose last parameter is an options object (no optional
 * positionals): throws on extra arguments, a non-object or an unknown key.
 */
export function checkOptions(where: string, options: unknown, known: readonly string[], optionsIndex: number, argCount: number) {
  if (argCount > optionsIndex + 1) {
    throw new TypeError(`${where}: takes at most ${optionsIndex + 1} arguments (the last one an options object), got ${argCount}`);
  }
  if (options === undefined) return;
  if (!isOptionsObject(options)) {
    throw new TypeError(`${where}: argument ${optionsIndex + 1} must be an options object { ${known.join(', ')} }, got ${describe(options)}`);
  }
  const unknown = Object.keys(options as object).filter((k) => !known.includes(k));
  if (unknown.length) throw new TypeError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${known.join(', ') || 'none'}`);
}

/** The arguments after the required ones: any prefix of P's optional positionals, optionally followed by one options object O. */
export type PyRest<P extends unknown[], O> = P extends [...infer Head, unknown] ? PyRest<Head, O> | P | [...P, O] : [] | [O];
