// Argument normalisation shared by the conv and pooling layers and their
// functional forms.

import type { MaxPool2dOptions } from './functional.js';

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

/**
 * Guards the "PyTorch's positional arguments, then ONE options object" rule:
 * throws if more arguments came than the signature has, if the argument at
 * optionsIndex is not a plain object, or if it holds a key the callee does not
 * know (a misspelt or snake_case option would otherwise be silently ignored).
 */
export function checkOptions(where: string, options: unknown, known: readonly string[], optionsIndex: number, argCount: number) {
  if (argCount > optionsIndex + 1) {
    throw new TypeError(`${where}: takes at most ${optionsIndex + 1} arguments (the last one an options object), got ${argCount}`);
  }
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options) || Object.getPrototypeOf(options) !== Object.prototype) {
    throw new TypeError(`${where}: argument ${optionsIndex + 1} must be an options object { ${known.join(', ')} }, got ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length) throw new TypeError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${known.join(', ') || 'none'}`);
}

const describe = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? (v as object).constructor?.name ?? 'an object' : `${typeof v} ${String(v)}`;
