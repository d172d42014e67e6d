// Keras recurrent layers (lstm, gru, simpleRNN) with Keras's weights, names,
// initializers and semantics: kernel [in, gates*units], recurrent_kernel
// [units, gates*units], ONE bias (GRU with resetAfter: [2, 3*units], input
// and recurrent parts), gate order LSTM i, f, c, o and GRU z, r, h. Masked
// steps carry the state (and so the output) over unchanged, so any mask
// works, pre-padding included. The default configuration runs on the fused
// 'recurrent' op (the one nn.LSTM uses, fed Keras's weights rearranged);
// other activations, resetAfter: false and recurrentDropout run the same
// equations as one step of ops per time step.

import { dropout as dropoutFn } from '../nn/functional.js';
import { Parameter } from '../nn/module.js';
import { cat, fromTyped, ones, record, stack, where, type Tensor } from '../tensor.js';
import { activationFn, type ActivationName } from './core.js';
import { initialize, type InitializerSpec } from './initializers.js';
import { Layer, type CallOptions, type KerasWeight, type LayerArgs, type LayerShape } from './layer.js';

export interface RecurrentArgs extends LayerArgs {
  units: number;
  activation?: ActivationName;
  /** The gates' activation: 'sigmoid' (Keras's default) or 'hardSigmoid' (TF.js's default) or any activation name. */
  recurrentActivation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: InitializerSpec;
  recurrentInitializer?: InitializerSpec;
  biasInitializer?: InitializerSpec;
  /** LSTM: the forget gate's bias starts at 1 (Keras's default). */
  unitForgetBias?: boolean;
  /** GRU: apply the reset gate after the recurrent matmul (Keras 2's default, CuDNN's and PyTorch's); false is TF.js's GRU. */
  resetAfter?: boolean;
  returnSequences?: boolean;
  returnState?: boolean;
  goBackwards?: boolean;
  /** Dropout on the inputs, in training; one mask per sequence, shared by its steps, as in Keras. */
  dropout?: number;
  /** Dropout on the recurrent state, in training; one mask per sequence. */
  recurrentDropout?: number;
}

type Kind = 'lstm' | 'gru' | 'rnn';
const GATES: Record<Kind, number> = { lstm: 4, gru: 3, rnn: 1 };


export abstract class KerasRecurrent extends Layer {
  kernel: Parameter | null = null;
  recurrentKernel: Parameter | null = null;
  bias: Parameter | null = null;
  private readonly act: (x: Tensor) => Tensor;
  private readonly gateAct: (x: Tensor) => Tensor;

  protected constructor(className: string, private readonly kind: Kind, readonly args: RecurrentArgs) {
    super(className, args);
    if (!Number.isInteger(args.units) || args.units <= 0) throw new Error(`${className}: units must be a positive integer, got ${args.units}`);
    for (const k of ['dropout', 'recurrentDropout'] as const) {
      const v = args[k] ?? 0;
      if (!(v >= 0 && v < 1)) throw new Error(`${className}: ${k} must be in [0, 1), got ${v}`);
    }
    this.act = activationFn(args.activation ?? 'tanh');
    this.gateAct = activationFn(args.recurrentActivation ?? 'sigmoid');
  }

  get units() { return this.args.units; }
  private get resetAfter() { return this.kind === 'gru' && (this.args.resetAfter ?? true); }

  override build(s: LayerShape) {
    if (s.length !== 2) this.shapeError('[time, features]', s);
    const inDim = s[1];
    if (inDim === null || inDim === undefined) this.shapeError('with a known feature count', s);
    const { units } = this.args;
    const width = GATES[this.kind] * units;
    this.kernel = new Parameter(initialize(this.args.kernelInitializer ?? 'glorotUniform', [inDim, width]));
    this.recurrentKernel = new Parameter(initialize(this.args.recurrentInitializer ?? 'orthogonal', [units, width]));
    if (this.args.useBias ?? true) {
      const biasInit = this.args.biasInitializer ?? 'zeros';
      let b: Tensor;
      if (this.kind === 'lstm' && (this.args.unitForgetBias ?? true)) {
        // Keras: the bias initializer for i, then ones for f, then the initializer for c and o.
        b = cat([initialize(biasInit, [units]), ones([units]), initialize(biasInit, [2 * units])], 0);
      } else b = initialize(biasInit, this.resetAfter ? [2, width] : [width]);
      this.bias = new Parameter(b);
    }
    return super.build(s);
  }

  computeOutputShape(s: LayerShape): LayerShape {
    return this.args.returnSequences ? [s[0], this.args.units] : [this.args.units];
  }

  override kerasWeights(): KerasWeight[] {
    const w: KerasWeight[] = [
      { name: 'kernel', value: this.kernel!, trainable: true },
      { name: 'recurrent_kernel', value: this.recurrentKernel!, trainable: true },
    ];
    if (this.bias) w.push({ name: 'bias', value: this.bias, trainable: true });
    return w;
  }

  /** Runs the layer; returns [output, ...final states] (h, and c for the LSTM). */
  callWithState(x: Tensor, { training, mask }: CallOptions): Tensor[] {
    if (x.ndim !== 3 || x.shape[2] !== this.kernel!.shape[0]) {
      this.shapeError(`[time, ${this.kernel!.shape[0]}]`, x.shape.slice(1));
    }
    let input = this.args.goBackwards ? reverseTime(x) : x;
    let m = mask && (this.args.goBackwards ? reverseTime(mask) : mask).float();
    const [B, , F] = input.shape;
    if (training && this.args.dropout) input = input.mul(dropoutFn(ones([B, 1, F]), this.args.dropout));
    // Time-major from here on: [T, B, ...].
    input = input.transpose(0, 1);
    m = m && m.transpose(0, 1);
    const recurrentDrop = training && this.args.recurrentDropout ? dropoutFn(ones([B, this.units]), this.args.recurrentDropout) : null;
    const fused = !recurrentDrop && (this.args.recurrentActivation ?? 'sigmoid') === 'sigmoid' && this.fusedActivation() && (this.kind !== 'gru' || this.resetAfter);
    const [seq, ...states] = fused ? this.runFused(input, m) : this.runSteps(input, m, recurrentDrop);
    return [this.args.returnSequences ? seq.transpose(0, 1) : states[0], ...states];
  }

  call(x: Tensor, opts: CallOptions) {
    return this.callWithState(x, opts)[0];
  }

  /** With returnState: [output, h] (GRU, SimpleRNN) or [output, h, c] (LSTM), as Keras returns. */
  override buildFor(shapes: LayerShape[]): LayerShape[] {
    const [out] = super.buildFor(shapes);
    return this.args.returnState ? [out, ...Array(this.kind === 'lstm' ? 2 : 1).fill([this.units])] : [out];
  }

  override invoke(xs: Tensor[], masks: (Tensor | null)[], training: boolean) {
    const outs = this.callWithState(xs[0], { training, mask: masks[0] });
    return { outputs: this.args.returnState ? outs : [outs[0]], mask: this.computeMask(xs[0], masks[0]) };
  }

  /** The fused op's cell activation for this layer, or null when it has none. */
  private fusedActivation(): string | null {
    const a = this.args.activation ?? 'tanh';
    if (a === 'tanh') return this.kind === 'rnn' ? 'rnn_tanh' : this.kind;
    if (a === 'relu' && this.kind === 'rnn') return 'rnn_relu';
    return null;
  }

  /** x [T, B, F] -> [sequence [T, B, H], h (, c)] on the fused op, with the gates in PyTorch's order. */
  private runFused(x: Tensor, mask: Tensor | null): Tensor[] {
    const [T, B] = x.shape;
    const H = this.units;
    const zeros = fromTyped(new Float32Array(B * H), [B, H], 'float32');
    const inputBias = this.bias && (this.resetAfter ? this.bias.index(0) : this.bias);
    const recurrentBias = this.bias && this.resetAfter ? this.bias.index(1) : null;
    let xg = record('linear', inputBias ? [x, this.kernel!, inputBias] : [x, this.kernel!], { activation: null });
    let whh: Tensor = this.recurrentKernel!;
    const inputs: Tensor[] = [];
    if (this.kind === 'gru') {
      // Keras's z, r, h -> PyTorch's r, z, n.
      const order = (t: Tensor, dim: number) => cat([t.slice(dim, H, 2 * H), t.slice(dim, 0, H), t.slice(dim, 2 * H, 3 * H)], dim);
      xg = order(xg, 2);
      whh = order(whh, 1);
      inputs.push(xg, whh.transpose(0, 1), zeros, recurrentBias ? order(recurrentBias, 0) : fromTyped(new Float32Array(3 * H), [3 * H], 'float32'));
    } else {
      inputs.push(xg, whh.transpose(0, 1), zeros);
      if (this.kind === 'lstm') inputs.push(zeros);
    }
    if (mask) inputs.push(mask);
    const res = record('recurrent', inputs, { mode: this.fusedActivation(), reverse: false, masked: !!mask });
    const hs = res.index(0);
    const states = [hs.index(T)];
    if (this.kind === 'lstm') states.push(res.index(1).index(T));
    return [hs.slice(0, 1, T + 1), ...states];
  }

  /** The same equations as ops, one time step at a time (any activation, resetAfter: false, recurrent dropout). */
  private runSteps(x: Tensor, mask: Tensor | null, recurrentDrop: Tensor | null): Tensor[] {
    const [T, B] = x.shape;
    const H = this.units;
    const K = this.kernel!;
    const U = this.recurrentKernel!;
    const gate = (t: Tensor, k: number) => t.slice(t.ndim - 1, k * H, (k + 1) * H);
    const inputBias = this.bias && (this.resetAfter ? this.bias.index(0) : this.bias);
    const recurrentBias = this.bias && this.resetAfter ? this.bias.index(1) : null;
    const xg = record('linear', inputBias ? [x, K, inputBias] : [x, K], { activation: null });
    let h = fromTyped(new Float32Array(B * H), [B, H], 'float32');
    let c = h;
    const outs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const xt = xg.index(t);
      const hd = recurrentDrop ? h.mul(recurrentDrop) : h;
      let hNew: Tensor;
      let cNew: Tensor | null = null;
      if (this.kind === 'lstm') {
        const z = xt.add(hd.matmul(U));
        const [i, f, g, o] = [this.gateAct(gate(z, 0)), this.gateAct(gate(z, 1)), this.act(gate(z, 2)), this.gateAct(gate(z, 3))];
        cNew = f.mul(c).add(i.mul(g));
        hNew = o.mul(this.act(cNew));
      } else if (this.kind === 'gru') {
        let z: Tensor, r: Tensor, hh: Tensor;
        if (this.resetAfter) {
          const inner = recurrentBias ? hd.matmul(U).add(recurrentBias) : hd.matmul(U);
          z = this.gateAct(gate(xt, 0).add(gate(inner, 0)));
          r = this.gateAct(gate(xt, 1).add(gate(inner, 1)));
          hh = this.act(gate(xt, 2).add(r.mul(gate(inner, 2))));
        } else {
          const zr = hd.matmul(U.slice(1, 0, 2 * H));
          z = this.gateAct(gate(xt, 0).add(gate(zr, 0)));
          r = this.gateAct(gate(xt, 1).add(gate(zr, 1)));
          hh = this.act(gate(xt, 2).add(r.mul(hd).matmul(U.slice(1, 2 * H, 3 * H))));
        }
        hNew = z.mul(h).add(z.rsub(1).mul(hh));
      } else {
        hNew = this.act(xt.add(hd.matmul(U)));
      }
      // Masked steps keep the previous state.
      const mt = mask && mask.index(t).unsqueeze(1).gt(0);
      h = mt ? where(mt, hNew, h) : hNew;
      if (cNew) c = mt ? where(mt, cNew, c) : cNew;
      outs.push(h);
    }
    return [stack(outs, 0), h, ...(this.kind === 'lstm' ? [c] : [])];
  }

  override computeMask(_x: Tensor, mask: Tensor | null) {
    return this.args.returnSequences ? mask : null;
  }

  getConfig() { return { ...this.args }; }
}

/** x[:, ::-1]: the time axis reversed. */
export function reverseTime(x: Tensor) {
  const t = x.shape[1];
  const order = Int32Array.from({ length: t }, (_, i) => t - 1 - i);
  return x.gather(1, fromTyped(order, [1, t, ...x.shape.slice(2).map(() => 1)], 'int32').expand(...x.shape));
}

export class LSTMLayer extends KerasRecurrent {
  constructor(args: RecurrentArgs) { super('LSTM', 'lstm', args); }
}
export class GRULayer extends KerasRecurrent {
  constructor(args: RecurrentArgs) { super('GRU', 'gru', args); }
}
export class SimpleRNN extends KerasRecurrent {
  constructor(args: RecurrentArgs) { super('SimpleRNN', 'rnn', args); }
}
