// Keras callbacks that ship with the SDK.

import { runtime } from '../context.js';
import type { Callback, LayersModel, Logs } from '../model.js';
import type { Tensor } from '../tensor.js';

export interface EarlyStoppingArgs {
  monitor?: string;
  patience?: number;
  minDelta?: number;
  mode?: 'auto' | 'min' | 'max';
  restoreBestWeights?: boolean;
}

/** Stops fit when `monitor` stops improving; optionally puts back the best epoch's weights. */
export function earlyStopping({ monitor = 'val_loss', patience = 0, minDelta = 0, mode = 'auto', restoreBestWeights = false }: EarlyStoppingArgs = {}): Callback & { stoppedEpoch: number; bestEpoch: number } {
  const higherIsBetter = mode === 'max' || (mode === 'auto' && /acc/.test(monitor));
  let model: LayersModel | null = null;
  let best = Infinity;
  let wait = 0;
  let snapshot: Tensor[] | null = null;
  const cb = {
    stoppedEpoch: -1,
    bestEpoch: -1,
    setModel(m: LayersModel) {
      model = m;
    },
    onTrainBegin() {
      best = Infinity;
      wait = 0;
      snapshot = null;
      cb.stoppedEpoch = -1;
      cb.bestEpoch = -1;
    },
    onEpochEnd(epoch: number, logs: Logs) {
      const value = logs[monitor];
      if (value === undefined) throw new Error(`earlyStopping: logs have no '${monitor}'; available: ${Object.keys(logs).join(', ')}`);
      const score = higherIsBetter ? -value : value;
      if (score < best - Math.abs(minDelta)) {
        best = score;
        wait = 0;
        cb.bestEpoch = epoch;
        // Clones run in the worker between epochs: the fit loop waits for this callback.
        if (restoreBestWeights) snapshot = model!.parameters().map((p) => p.detach().clone());
      } else if (++wait > patience) {
        cb.stoppedEpoch = epoch;
        model!.stopTraining = true;
      }
    },
    onTrainEnd() {
      if (!restoreBestWeights || !snapshot) return;
      const params = model!.parameters();
      snapshot.forEach((s, i) => runtime().enqueue(['assign', params[i].id, s.id]));
    },
  };
  return cb;
}

/**
 * Keras' TerminateOnNaN: fit stops with an error naming the epoch and batch whose
 * loss was NaN or infinite. On by default; this turns it back on where fit's
 * `terminateOnNaN: false` option turned it off.
 */
export function terminateOnNaN(): Callback {
  return { terminateOnNaN: true };
}
