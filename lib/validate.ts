// Argument checks for public entry points: each throws a TypeError or
// RangeError at the user's line that names the call, the argument and what
// it got, instead of an internal message from deep inside the library.

import { fmt, ShapeError, type DType } from './shape.js';

export const DTYPES: readonly DType[] = ['float32', 'int32'];
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** A short description of any value for error messages: 'the string "abc"', 'null', 'an Array', ... */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
}

/** An integer within [min, max]. */
export function integer(v: unknown, what: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = min === 1 && max === Infinity ? 'a positive integer' : min === 0 && max === Infinity ? 'a non-negative integer' : `an integer in [${min}, ${max}]`;
    throw new (typeof v === 'number' ? RangeError : TypeError)(`${what} must be ${range}, got ${describe(v)}`);
  }
  return v;
}

/** A finite number (or any number, NaN and infinities included, when `finite` is false). */
export function number(v: unknown, what: string, { finite = true, min = -Infinity, max = Infinity } = {}): number {
  if (typeof v !== 'number' || (finite && !Number.isFinite(v)) || v < min || v > max) {
    const range = min > -Infinity || max < Infinity ? ` in [${min}, ${max}]` : '';
    throw new (typeof v === 'number' ? RangeError : TypeError)(`${what} must be a ${finite ? 'finite ' : ''}number${range}, got ${describe(v)}`);
  }
  return v;
}

/** A shape: a list of non-negative integers. */
export function shape(v: unknown, what: string): number[] {
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new TypeError(`${what} must be a list of non-negative integers, got ${describe(v)}`);
  const dims = Array.from(v as ArrayLike<unknown>);
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw new ShapeError(`${what} must be a list of non-negative integers, got [${dims.map(String).join(', ')}]`);
  }
  return dims as number[];
}

export function dtype(v: unknown, what: string): DType {
  if (!DTYPES.includes(v as DType)) throw new TypeError(`${what} must be 'float32' or 'int32', got ${describe(v)}`);
  return v as DType;
}

/** One of the listed strings. */
export function oneOf<T extends string>(v: unknown, options: readonly T[], what: string): T {
  if (!options.includes(v as T)) throw new TypeError(`${what} must be one of ${options.map((o) => `'${o}'`).join(', ')}, got ${describe(v)}`);
  return v as T;
}

/** A plain options object (or undefined, giving {}). */
export function options<T extends object>(v: T | undefined, what: string): T {
  if (v === undefined) return {} as T;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`${what} must be an options object, got ${describe(v)}`);
  return v;
}

/** Values that fit int32 as PyTorch requires: integers in range (fractions truncate toward zero, as a cast does). */
export function int32Values(values: ArrayLike<number>, what: string) {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= INT32_MIN && v < INT32_MAX + 1)) throw new RangeError(`${what}: value ${v} at flat index ${i} cannot be converted to int32 without overflow`);
  }
}

/**
 * Shape and flat values of nested arrays, checking that every element is a
 * number (or boolean) and that the nesting is rectangular. One pass straight
 * into a typed array of `Flat` (no per-element allocation): a large nested
 * array is converted in as little main-thread time as it can be.
 */
export function nested(data: unknown[], what: string, Flat: Float32ArrayConstructor | Float64ArrayConstructor): { shape: number[]; flat: Float32Array | Float64Array } {
  const shape: number[] = [];
  for (let cur: unknown = data; Array.isArray(cur); cur = cur[0]) shape.push(cur.length);
  const flat = new Flat(shape.reduce((a, b) => a * b, 1));
  const last = shape.length - 1;
  // The index of the entry being read, kept in place so only an error builds a path.
  const at: number[] = [];
  let k = 0;
  const walk = (v: unknown, depth: number) => {
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      const len = Array.isArray(v) ? `has length ${v.length}` : `is ${describe(v)}`;
      throw new ShapeError(`${what}: nested array is ragged: the entry at [${at.slice(0, depth).join(', ')}] ${len}, expected a list of length ${shape[depth]} (shape ${fmt(shape)})`);
    }
    if (depth < last) {
      for (let i = 0; i < v.length; i++) {
        at[depth] = i;
        walk(v[i], depth + 1);
      }
      return;
    }
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (typeof e === 'number') flat[k++] = e;
      else if (typeof e === 'boolean') flat[k++] = +e;
      else {
        at[depth] = i;
        throw new TypeError(`${what}: element at [${at.slice(0, depth + 1).join(', ')}] is ${describe(e)}, not a number`);
      }
    }
  };
  walk(data, 0);
  return { shape, flat };
}

/** Throws a RangeError when a tensor of `shape` would not fit the engine's largest buffer; names the bytes and the limit. */
export function fitsBuffer(shape: readonly number[], maxBytes: number, what: string) {
  let elements = 1;
  for (const d of shape) elements *= d;
  const bytes = elements * 4;
  if (bytes > maxBytes) {
    throw new RangeError(`${what}: a tensor of shape ${fmt(shape)} needs ${bytes.toLocaleString('en-US')} bytes, more than this engine's largest buffer (${maxBytes.toLocaleString('en-US')} bytes, the device's maxBufferSize / maxStorageBufferBindingSize)`);
  }
}
