// sn.autograd: PyTorch's torch.autograd switches. Anomaly detection checks, on the
// device, every op's output and every gradient backward computes for NaN and
// infinities; the next read or sync rejects naming the first op that made one and
// where the page called it (PyTorch prints the forward op's traceback).

import { runtime } from './context.js';
import * as check from './validate.js';

/**
 * Turns anomaly detection on or off for the ops recorded from now on (PyTorch's
 * `torch.autograd.set_detect_anomaly(mode)`). While on, each op costs a check on the
 * device (a few small kernels), so it is off by default. It is per engine: `sn.init()`
 * starts with it off.
 *
 * @example
 * sn.autograd.setDetectAnomaly(true);
 * const y = sn.tensor([-1]).log().mul(2);
 * await y.data();   // rejects: "detectAnomaly: op 'log' (tensor #2) produced NaN or infinite values" and where log was called
 */
export function setDetectAnomaly(mode: boolean): void {
  if (typeof mode !== 'boolean') throw new TypeError(`setDetectAnomaly: mode must be true or false, got ${check.describe(mode)}`);
  const rt = runtime();
  if (rt.anomaly === mode) return;
  rt.anomaly = mode;
  rt.enqueue(['anomaly', mode]);
}

/** Whether anomaly detection is on (PyTorch's `torch.is_anomaly_enabled()`). */
export function isAnomalyEnabled(): boolean {
  return runtime().anomaly;
}

/**
 * Anomaly detection for the ops `fn` records (PyTorch's `with torch.autograd.detect_anomaly():`),
 * then back to what it was; `fn` may be async. `detectAnomaly(true)` / `detectAnomaly(false)`
 * is `setDetectAnomaly`.
 *
 * @example
 * await sn.autograd.detectAnomaly(async () => {
 *   const loss = model.forward(x).log().mean();
 *   loss.backward();
 *   await sn.sync();   // rejects naming the first op with a NaN or infinite output or gradient
 * });
 */
export function detectAnomaly(mode: boolean): void;
export function detectAnomaly<T>(fn: () => T): T;
export function detectAnomaly<T>(arg: boolean | (() => T)): T | void {
  if (typeof arg === 'boolean') return setDetectAnomaly(arg);
  if (typeof arg !== 'function') throw new TypeError(`detectAnomaly: expected a function (or true/false), got ${check.describe(arg)}`);
  const before = isAnomalyEnabled();
  setDetectAnomaly(true);
  let result: T;
  try {
    result = arg();
  } catch (e) {
    setDetectAnomaly(before);
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => setDetectAnomaly(before)) as T;
  setDetectAnomaly(before);
  return result;
}
