// Spec of the fused recurrent op (implemented, with the layout of its
// inputs and output explained, in worker/ops/recurrent.ts).

import { fmt, ShapeError } from '../shape.js';
import { defineSpec, meta, type Meta } from './spec.js';

export type CellMode = 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';

export interface RecurrentAttrs {
  mode: CellMode;
  reverse: boolean;
  masked: boolean;
}

/** Gates per mode: LSTM i, f, g, o; GRU r, z, n; RNN one. */
export const GATES: Record<CellMode, number> = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1 };
/** Output slots: LSTM h, c, i, f, g, o; GRU h, r, z, n, W_hn h + b_hn; RNN h. */
const SLOTS: Record<CellMode, number> = { lstm: 6, gru: 5, rnn_tanh: 1, rnn_relu: 1 };

/** Names the inputs by role (their positions depend on the mode). */
export function unpack<T>(ins: T[], { mode, masked }: RecurrentAttrs) {
  const extra = mode === 'lstm' || mode === 'gru' ? 1 : 0;
  return {
    xg: ins[0], whh: ins[1], h0: ins[2],
    c0: mode === 'lstm' ? ins[3] : undefined,
    bhh: mode === 'gru' ? ins[3] : undefined,
    mask: masked ? ins[3 + extra] : undefined,
    count: 3 + extra + (masked ? 1 : 0),
  };
}

/** Checks every input against the input projection; returns the sizes (T steps, B batch, H hidden, G gates, S slots). */
export function checkShapes(ins: Meta[], at: RecurrentAttrs) {
  const { xg, whh, h0, c0, bhh, mask, count } = unpack(ins, at);
  if (!(at.mode in GATES)) throw new ShapeError(`recurrent: unknown mode '${at.mode}'`);
  if (ins.length !== count) throw new ShapeError(`recurrent: ${at.mode}${at.masked ? ' (masked)' : ''} takes ${count} inputs, got ${ins.length}`);
  if (ins.some((m) => m.dtype !== 'float32')) throw new ShapeError('recurrent: every input must be float32');
  const G = GATES[at.mode];
  if (whh.shape.length !== 2 || whh.shape[0] !== G * whh.shape[1]) throw new ShapeError(`recurrent: weight_hh must be [${G}*hidden, hidden], got ${fmt(whh.shape)}`);
  const H = whh.shape[1];
  if (xg.shape.length !== 3 || xg.shape[2] !== G * H) throw new ShapeError(`recurrent: input projection must be [seq, batch, ${G * H}], got ${fmt(xg.shape)}`);
  const [T, B] = xg.shape;
  const want = (name: string, m: Meta | undefined, shape: number[]) => {
    if (m && fmt(m.shape) !== fmt(shape)) throw new ShapeError(`recurrent: ${name} must be ${fmt(shape)} for input projection ${fmt(xg.shape)}, got ${fmt(m.shape)}`);
  };
  want('h0', h0, [B, H]);
  want('c0', c0, [B, H]);
  want('bias_hh', bhh, [G * H]);
  want('mask', mask, [T, B]);
  return { T, B, H, G, S: SLOTS[at.mode] };
}

/** One recurrent layer in one direction: output [S, T+1, B, H]. */
export const recurrent = defineSpec<RecurrentAttrs>({
  shape: (ins, at) => {
    const { T, B, H, S } = checkShapes(ins, at);
    return meta([S, T + 1, B, H], 'float32');
  },
});
