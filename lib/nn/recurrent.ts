// Recurrent layers: LSTM, GRU and Elman RNN with PyTorch's parameters,
// state_dict layout and semantics. Per layer and direction the input
// projection for all steps is ONE matmul; the time loop is the fused
// 'recurrent' op (worker/ops/recurrent.ts). Padded batches of different
// lengths run as one batched loop under a [seq, batch] mask.

import { fmt, ShapeError } from '../shape.js';
import { arange, cat, record, stack, Tensor, tensor, zeros } from '../tensor.js';
import { GATES, type CellMode } from '../ops/recurrent.js';
import { dropout as applyDropout } from './functional.js';
import { uniform } from './init.js';
import { Module, Parameter } from './module.js';
import { pyFloat } from './repr.js';
import { pyArgs, requireArgs, type ArgSpec, type PyRest } from './args.js';

export interface RNNOptions {
  numLayers?: number;
  bias?: boolean;
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode. */
  dropout?: number;
  bidirectional?: boolean;
}

export interface RecurrentCallOptions {
  /**
   * Valid length of each sequence in a zero-padded batch (an array of numbers or an int32 Tensor [batch]):
   * like pack_padded_sequence(enforce_sorted=False) then pad_packed_sequence(total_length=seq), outputs past a
   * sequence's length are zero and the final state is the one at its own last step.
   */
  lengths?: ArrayLike<number> | Tensor;
}

interface LayerWeights {
  wih: Parameter;
  whh: Parameter;
  bih: Parameter | null;
  bhh: Parameter | null;
}

export abstract class RNNBase extends Module {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;

  protected constructor(private readonly mode: CellMode, readonly inputSize: number, readonly hiddenSize: number, opts: RNNOptions) {
    super();
    const { numLayers = 1, bias = true, batchFirst = false, dropout = 0, bidirectional = false } = opts;
    const name = this.constructor.name;
    for (const [k, v] of [['inputSize', inputSize], ['hiddenSize', hiddenSize], ['numLayers', numLayers]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(dropout >= 0 && dropout <= 1)) throw new Error(`${name}: dropout should be a number in range [0, 1] representing the probability of an element being zeroed, got ${dropout}`);
    this.numLayers = numLayers;
    this.bias = bias;
    this.batchFirst = batchFirst;
    this.dropout = dropout;
    this.bidirectional = bidirectional;
    // Declared in PyTorch's order (per layer, per direction: weight_ih, weight_hh, bias_ih, bias_hh),
    // so Module discovery yields PyTorch's state_dict order. Every one is U(-1/sqrt(hidden), 1/sqrt(hidden)).
    const rows = GATES[mode] * hiddenSize;
    const bound = 1 / Math.sqrt(hiddenSize);
    const init = (shape: number[]) => new Parameter(uniform(shape, -bound, bound));
    for (let l = 0; l < numLayers; l++) {
      for (let d = 0; d < this.directions; d++) {
        const sfx = RNNBase.suffix(l, d);
        const self = this as unknown as Record<string, Parameter>;
        self[`weight_ih${sfx}`] = init([rows, l === 0 ? inputSize : hiddenSize * this.directions]);
        self[`weight_hh${sfx}`] = init([rows, hiddenSize]);
        if (bias) {
          self[`bias_ih${sfx}`] = init([rows]);
          self[`bias_hh${sfx}`] = init([rows]);
        }
      }
    }
  }

  get directions() {
    return this.bidirectional ? 2 : 1;
  }

  private static suffix(layer: number, dir: number) {
    return `_l${layer}${dir ? '_reverse' : ''}`;
  }

  private weights(layer: number, dir: number): LayerWeights {
    const self = this as unknown as Record<string, Parameter | undefined>;
    const sfx = RNNBase.suffix(layer, dir);
    return { wih: self[`weight_ih${sfx}`]!, whh: self[`weight_hh${sfx}`]!, bih: self[`bias_ih${sfx}`] ?? null, bhh: self[`bias_hh${sfx}`] ?? null };
  }

  /**
   * Runs every layer over x ([seq, batch, in], [batch, seq, in] with batchFirst, or unbatched [seq, in]);
   * `hx` holds the initial states ([layers*dirs, batch, hidden] each: h, and c for the LSTM).
   * Returns the last layer's output and the final states, shaped like `hx`.
   */
  protected run(input: Tensor, hx: Tensor[] | null, { lengths }: RecurrentCallOptions): [Tensor, Tensor[]] {
    const name = this.constructor.name;
    if (input.ndim !== 2 && input.ndim !== 3) throw new ShapeError(`${name}: expected input of 3 dims ([seq, batch, in], or [batch, seq, in] with batchFirst) or 2 dims (unbatched [seq, in]), got ${fmt(input.shape)}`);
    const batched = input.ndim === 3;
    if (!batched && lengths !== undefined) throw new ShapeError(`${name}: lengths needs a batched input, got ${fmt(input.shape)}`);
    let x = !batched ? input.unsqueeze(1) : this.batchFirst ? input.transpose(0, 1) : input;
    const [T, B, F] = x.shape;
    if (F !== this.inputSize) throw new ShapeError(`${name}: input.size(-1) must be equal to input_size. Expected ${this.inputSize}, got ${F} (input ${fmt(input.shape)})`);
    if (T === 0) throw new ShapeError(`${name}: expected a sequence of at least one step, got input ${fmt(input.shape)}`);
    const H = this.hiddenSize;
    const D = this.directions;
    const G = GATES[this.mode];
    const nStates = this.mode === 'lstm' ? 2 : 1;

    const stateShape = batched ? [this.numLayers * D, B, H] : [this.numLayers * D, H];
    const init = hx?.map((h) => {
      if (fmt(h.shape) !== fmt(stateShape)) throw new ShapeError(`${name}: expected hidden size ${fmt(stateShape)}, got ${fmt(h.shape)}`);
      return batched ? h : h.unsqueeze(1);
    });
    const zeroState = init ? null : zeros([B, H]);
    const mask = lengths === undefined ? null : lengthMask(name, lengths, T, B);

    const finals: Tensor[][] = Array.from({ length: nStates }, () => []);
    for (let l = 0; l < this.numLayers; l++) {
      const flat = x.reshape([T * B, x.shape[2]]);
      const outs: Tensor[] = [];
      for (let d = 0; d < D; d++) {
        const { wih, whh, bih, bhh } = this.weights(l, d);
        // The GRU keeps b_hh apart: its n-gate part is scaled by r. The others fold both biases into the projection.
        const xBias = this.mode === 'gru' ? bih : bih && bhh && bih.add(bhh);
        const proj = flat.matmul(wih.T);
        const inputs = [(xBias ? proj.add(xBias) : proj).reshape([T, B, G * H]), whh];
        const k = l * D + d;
        inputs.push(init ? init[0].index(k) : zeroState!);
        if (this.mode === 'lstm') inputs.push(init ? init[1].index(k) : zeroState!);
        if (this.mode === 'gru') inputs.push(bhh ?? zeros([G * H]));
        if (mask) inputs.push(mask);
        const res = record('recurrent', inputs, { mode: this.mode, reverse: d === 1, masked: !!mask });
        // See worker/ops/recurrent.ts for the layout: slot 0 is h, slot 1 the LSTM's c, along T+1 time indices.
        const hs = res.index(0);
        outs.push(d === 1 ? hs.slice(0, 0, T) : hs.slice(0, 1, T + 1));
        const last = d === 1 ? 0 : T;
        finals[0].push(hs.index(last));
        if (this.mode === 'lstm') finals[1].push(res.index(1).index(last));
      }
      x = D === 2 ? cat(outs, 2) : outs[0];
      if (l < this.numLayers - 1) x = applyDropout(x, this.dropout, { training: this.training });
    }
    if (mask) x = x.mul(mask.unsqueeze(2));
    const output = !batched ? x.squeeze(1) : this.batchFirst ? x.transpose(0, 1) : x;
    return [output, finals.map((f) => (batched ? stack(f, 0) : stack(f, 0).squeeze(1)))];
  }

  override extraRepr() {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += ', bias=False';
    if (this.batchFirst) s += ', batch_first=True';
    if (this.dropout !== 0) s += `, dropout=${pyFloat(this.dropout)}`;
    if (this.bidirectional) s += ', bidirectional=True';
    return s;
  }
}

/** [seq, batch] float mask: 1 where step t < lengths[b]. */
function lengthMask(name: string, lengths: ArrayLike<number> | Tensor, T: number, B: number): Tensor {
  if (lengths instanceof Tensor) {
    if (fmt(lengths.shape) !== fmt([B])) throw new ShapeError(`${name}: lengths must have shape ${fmt([B])} (one per sequence), got ${fmt(lengths.shape)}`);
    return arange(T).unsqueeze(1).lt(lengths.unsqueeze(0));
  }
  const lens = Array.from(lengths);
  if (lens.length !== B) throw new ShapeError(`${name}: expected ${B} lengths (one per sequence), got ${lens.length}`);
  const bad = lens.find((n) => !Number.isInteger(n) || n < 1 || n > T);
  if (bad !== undefined) throw new ShapeError(`${name}: every length must be an integer in [1, ${T}] (the padded sequence length), got ${bad}`);
  const m = new Float32Array(T * B);
  lens.forEach((n, b) => { for (let t = 0; t < n; t++) m[t * B + b] = 1; });
  return tensor(m, [T, B]);
}

const RNN_ARGS: ArgSpec = { numLayers: 'count', bias: 'boolean', batchFirst: 'boolean', dropout: 'number', bidirectional: 'boolean' };
type RNNPositional = [numLayers: number, bias: boolean, batchFirst: boolean, dropout: number, bidirectional: boolean];

function rnnArgs<O extends RNNOptions>(name: string, inputSize: number, hiddenSize: number, rest: unknown[], spec: ArgSpec): O {
  requireArgs(name, { inputSize: [inputSize, 'count'], hiddenSize: [hiddenSize, 'count'] });
  return pyArgs<O>(name, rest, spec);
}

export class LSTM extends RNNBase {
  /** PyTorch's order: numLayers, bias, batchFirst, dropout, bidirectional, projSize (only 0). */
  constructor(inputSize: number, hiddenSize: number, ...rest: PyRest<[...RNNPositional, projSize: number], RNNOptions & { projSize?: number }>) {
    const opts = rnnArgs<RNNOptions & { projSize?: number }>('LSTM', inputSize, hiddenSize, rest, { ...RNN_ARGS, projSize: 'int' });
    if (opts.projSize) throw new RangeError(`LSTM: projSize=${opts.projSize} is not supported (only 0)`);
    super('lstm', inputSize, hiddenSize, opts);
  }

  /** Returns [output, [h_n, c_n]]; hx is [h_0, c_0], zeros when omitted. */
  forward(x: Tensor, hx?: [Tensor, Tensor] | null, opts: RecurrentCallOptions = {}): [Tensor, [Tensor, Tensor]] {
    if (hx && (!Array.isArray(hx) || hx.length !== 2)) throw new TypeError('LSTM: hx must be [h_0, c_0]');
    const [out, [h, c]] = this.run(x, hx ?? null, opts);
    return [out, [h, c]];
  }
}

export class GRU extends RNNBase {
  /** PyTorch's order: numLayers, bias, batchFirst, dropout, bidirectional. */
  constructor(inputSize: number, hiddenSize: number, ...rest: PyRest<RNNPositional, RNNOptions>) {
    super('gru', inputSize, hiddenSize, rnnArgs('GRU', inputSize, hiddenSize, rest, RNN_ARGS));
  }

  /** Returns [output, h_n]; hx is h_0, zeros when omitted. */
  forward(x: Tensor, hx?: Tensor | null, opts: RecurrentCallOptions = {}): [Tensor, Tensor] {
    const [out, [h]] = this.run(x, hx ? [hx] : null, opts);
    return [out, h];
  }
}

export class RNN extends RNNBase {
  readonly nonlinearity: 'tanh' | 'relu';

  /** PyTorch's order: numLayers, nonlinearity, bias, batchFirst, dropout, bidirectional. */
  constructor(inputSize: number, hiddenSize: number,
    ...rest: PyRest<[numLayers: number, nonlinearity: 'tanh' | 'relu', bias: boolean, batchFirst: boolean, dropout: number, bidirectional: boolean], RNNOptions & { nonlinearity?: 'tanh' | 'relu' }>) {
    // Spreading RNN_ARGS after keeps numLayers first and nonlinearity second, PyTorch's order.
    const opts = rnnArgs<RNNOptions & { nonlinearity?: 'tanh' | 'relu' }>('RNN', inputSize, hiddenSize, rest, { numLayers: 'count', nonlinearity: 'string', ...RNN_ARGS });
    const { nonlinearity = 'tanh' } = opts;
    if (nonlinearity !== 'tanh' && nonlinearity !== 'relu') throw new Error(`RNN: unknown nonlinearity '${nonlinearity}' (expected 'tanh' or 'relu')`);
    super(nonlinearity === 'tanh' ? 'rnn_tanh' : 'rnn_relu', inputSize, hiddenSize, opts);
    this.nonlinearity = nonlinearity;
  }

  /** Returns [output, h_n]; hx is h_0, zeros when omitted. */
  forward(x: Tensor, hx?: Tensor | null, opts: RecurrentCallOptions = {}): [Tensor, Tensor] {
    const [out, [h]] = this.run(x, hx ? [hx] : null, opts);
    return [out, h];
  }
}
