// Keras layer wrappers: timeDistributed (a layer applied to every time step)
// and bidirectional (a recurrent layer run both ways, outputs merged).

import { cat, type Tensor } from '../tensor.js';
import { Layer, type CallOptions, type KerasWeight, type LayerArgs, type LayerShape } from './layer.js';
import { KerasRecurrent, reverseTime, type RecurrentArgs } from './recurrent.js';

/** Applies `layer` to every slice x[:, t]: [batch, time, ...] -> [batch, time, ...layer's output]. */
export class TimeDistributed extends Layer {
  readonly layer: Layer;
  constructor(readonly args: LayerArgs & { layer: Layer }) {
    super('TimeDistributed', args);
    if (!(args.layer instanceof Layer)) throw new TypeError('timeDistributed: layer must be a layer from sn.layers');
    this.layer = args.layer;
  }
  override build(s: LayerShape) {
    if (s.length < 2) this.shapeError('[time, ...features]', s);
    this.layer.build(s.slice(1));
    return super.build(s);
  }
  computeOutputShape(s: LayerShape): LayerShape {
    return [s[0], ...this.layer.computeOutputShape(s.slice(1))];
  }
  call(x: Tensor, { training }: CallOptions) {
    const [b, t, ...rest] = x.shape;
    const y = this.layer.call(x.reshape(b * t, ...rest), { training, mask: null });
    return y.reshape(b, t, ...y.shape.slice(1));
  }
  override kerasWeights(): KerasWeight[] { return this.layer.kerasWeights(); }
  getConfig() { return { ...this.args, layer: { className: this.layer.className, config: { ...this.layer.getConfig(), name: this.layer.name } } }; }
}

export type MergeMode = 'concat' | 'sum' | 'mul' | 'ave';
const MERGES: Record<MergeMode, (a: Tensor, b: Tensor) => Tensor> = {
  concat: (a, b) => cat([a, b], a.ndim - 1),
  sum: (a, b) => a.add(b),
  mul: (a, b) => a.mul(b),
  ave: (a, b) => a.add(b).mul(0.5),
};

/**
 * A recurrent layer and a copy of it that reads the sequence backwards (its own weights, Keras's
 * 'backward_' name); with returnSequences the backward outputs are put back in time order before merging.
 */
export class Bidirectional extends Layer {
  readonly forwardLayer: KerasRecurrent;
  readonly backwardLayer: KerasRecurrent;
  constructor(readonly args: LayerArgs & { layer: KerasRecurrent; mergeMode?: MergeMode }) {
    super('Bidirectional', args);
    const layer = args.layer;
    if (!(layer instanceof KerasRecurrent)) throw new TypeError('bidirectional: layer must be sn.layers.lstm, gru or simpleRNN');
    if (!((args.mergeMode ?? 'concat') in MERGES)) throw new Error(`bidirectional: mergeMode must be one of ${Object.keys(MERGES).join(', ')}, got '${args.mergeMode}'`);
    this.forwardLayer = layer;
    const Ctor = layer.constructor as new (a: RecurrentArgs) => KerasRecurrent;
    this.backwardLayer = new Ctor({ ...layer.args, goBackwards: !layer.args.goBackwards, name: `backward_${layer.name}` });
  }
  override build(s: LayerShape) {
    this.forwardLayer.build(s);
    this.backwardLayer.build(s);
    return super.build(s);
  }
  computeOutputShape(s: LayerShape): LayerShape {
    const out = this.forwardLayer.computeOutputShape(s);
    const last = out[out.length - 1]!;
    return [...out.slice(0, -1), (this.args.mergeMode ?? 'concat') === 'concat' ? 2 * last : last];
  }
  /** [merged output, forward states..., backward states...], as Keras returns with returnState. */
  callWithState(x: Tensor, opts: CallOptions): Tensor[] {
    const [f, ...fs] = this.forwardLayer.callWithState(x, opts);
    let [b, ...bs] = this.backwardLayer.callWithState(x, opts);
    if (this.forwardLayer.args.returnSequences) b = reverseTime(b);
    return [MERGES[this.args.mergeMode ?? 'concat'](f, b), ...fs, ...bs];
  }
  call(x: Tensor, opts: CallOptions) { return this.callWithState(x, opts)[0]; }
  override buildFor(shapes: LayerShape[]): LayerShape[] {
    const [out] = super.buildFor(shapes);
    const states = this.forwardLayer.buildFor(shapes).slice(1);
    return [out, ...states, ...states];
  }
  override invoke(xs: Tensor[], masks: (Tensor | null)[], training: boolean) {
    const outs = this.callWithState(xs[0], { training, mask: masks[0] });
    return { outputs: this.forwardLayer.args.returnState ? outs : [outs[0]], mask: this.computeMask(xs[0], masks[0]) };
  }
  override computeMask(x: Tensor, mask: Tensor | null) { return this.forwardLayer.computeMask(x, mask); }
  override kerasWeights(): KerasWeight[] { return [...this.forwardLayer.kerasWeights(), ...this.backwardLayer.kerasWeights()]; }
  getConfig() {
    const { layer, ...rest } = this.args;
    return { ...rest, layer: { className: layer.className, config: { ...layer.getConfig(), name: layer.name } } };
  }
}
