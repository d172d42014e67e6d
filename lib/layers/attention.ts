// Keras's MultiHeadAttention: weights in Keras's einsum layout (query/kernel
// [dim, heads, keyDim], ...), called as mha.apply(query, value, key?, options).
// Each einsum is a linear op on a flattened kernel, so this is the same
// engine path as Dense and nn.MultiheadAttention, and the attention itself is
// nn's attend (one op unless the scores are returned or dropped out).

import { fmt, ShapeError } from '../shape.js';
import { record, tensor, Tensor, where } from '../tensor.js';
import { attend } from '../nn/functional.js';
import { Parameter } from '../nn/module.js';
import { initialize, type InitializerSpec } from './initializers.js';
import { Layer, SymbolicTensor, type KerasWeight, type LayerArgs, type LayerShape } from './layer.js';
import { integer } from '../validate.js';

export interface MultiHeadAttentionArgs extends LayerArgs {
  numHeads: number;
  keyDim: number;
  /** Size of each head for the value; default keyDim. */
  valueDim?: number;
  /** Dropout rate on the attention probabilities (training only). */
  dropout?: number;
  useBias?: boolean;
  /** Features of the output; default the query's last dimension. */
  outputShape?: number;
  kernelInitializer?: InitializerSpec;
  biasInitializer?: InitializerSpec;
}

/** Keras's call arguments besides the inputs. attentionMask is [batch, T, S] with 1 where a query may attend a key. */
export interface MultiHeadAttentionCall {
  attentionMask?: Tensor | SymbolicTensor;
  returnAttentionScores?: boolean;
  useCausalMask?: boolean;
  training?: boolean;
}

type Flags = { returnAttentionScores: boolean; useCausalMask: boolean };
type Input = Tensor | SymbolicTensor;

/** Keras's softmax mask value: masked scores get this added, so a fully masked row averages evenly as in Keras. */
const MASKED = -1e9;

const asAllowed = (m: Tensor) => where(m.ne(0), 1, 0);

export class MultiHeadAttention extends Layer {
  queryKernel: Parameter | null = null;
  queryBias: Parameter | null = null;
  keyKernel: Parameter | null = null;
  keyBias: Parameter | null = null;
  valueKernel: Parameter | null = null;
  valueBias: Parameter | null = null;
  outputKernel: Parameter | null = null;
  outputBias: Parameter | null = null;
  /** The call flags of this layer's place in a functional graph (the graph stores inputs only). */
  private graphFlags: Flags | null;
  private readonly valueDim: number;

  constructor(readonly args: MultiHeadAttentionArgs & { callFlags?: Flags }) {
    super('MultiHeadAttention', args);
    for (const k of ['numHeads', 'keyDim'] as const) integer(args[k], `multiHeadAttention: ${k}`, 1);
    if (args.valueDim !== undefined) integer(args.valueDim, 'multiHeadAttention: valueDim', 1);
    if (args.outputShape !== undefined) integer(args.outputShape, "multiHeadAttention: outputShape (the output's last dimension)", 1);
    const p = args.dropout ?? 0;
    if (!(p >= 0 && p < 1)) throw new Error(`multiHeadAttention: dropout must be in [0, 1), got ${p}`);
    this.valueDim = args.valueDim ?? args.keyDim;
    this.graphFlags = args.callFlags ?? null;
  }

  /** Inputs are [query, value, key] plus the attention mask when given: [batch, T, dim], [batch, S, vdim], [batch, S, kdim], [batch, T, S]. */
  override buildFor(shapes: LayerShape[]): LayerShape[] {
    if (shapes.length !== 3 && shapes.length !== 4) throw new Error(`layer '${this.name}' takes query, value, key and an optional attentionMask, got ${shapes.length} inputs`);
    const [q, v, k, m] = shapes;
    const all = `query [batch, ${q.join(', ')}], value [batch, ${v.join(', ')}], key [batch, ${k.join(', ')}]${m ? `, attentionMask [batch, ${m.join(', ')}]` : ''}`;
    const last = (s: LayerShape) => s[s.length - 1];
    if (q.length !== 2 || v.length !== 2 || k.length !== 2 || [q, v, k].some((s) => last(s) === null)) {
      throw new ShapeError(`layer '${this.name}' expected query, value and key of shape [batch, seq, features] with known features, got ${all}`);
    }
    if (v[0] !== null && k[0] !== null && v[0] !== k[0]) throw new ShapeError(`layer '${this.name}': value and key must have one length, got ${all}`);
    if (m && (m.length !== 2 || (m[0] !== null && q[0] !== null && m[0] !== q[0]) || (m[1] !== null && v[0] !== null && m[1] !== v[0]))) {
      throw new ShapeError(`layer '${this.name}': attentionMask must be [batch, T, S] for query [batch, T, ...] and value [batch, S, ...], got ${all}`);
    }
    if (!this.built) this.buildWeights(last(q)!, last(k)!, last(v)!);
    else if (this.queryKernel!.shape[0] !== last(q) || this.keyKernel!.shape[0] !== last(k) || this.valueKernel!.shape[0] !== last(v)) {
      throw new ShapeError(`layer '${this.name}' was built for query, key, value features ${this.queryKernel!.shape[0]}, ${this.keyKernel!.shape[0]}, ${this.valueKernel!.shape[0]}, got ${all}`);
    }
    const out: LayerShape[] = [[q[0], this.outputKernel!.shape[2]]];
    if (this.graphFlags?.returnAttentionScores) out.push([this.args.numHeads, q[0], v[0]]);
    return out;
  }

  private buildWeights(qDim: number, kDim: number, vDim: number) {
    const { numHeads: h, keyDim, useBias = true } = this.args;
    const kernel = (shape: number[]) => new Parameter(initialize(this.args.kernelInitializer ?? 'glorotUniform', shape));
    const bias = (shape: number[]) => (useBias ? new Parameter(initialize(this.args.biasInitializer ?? 'zeros', shape)) : null);
    const outDim = this.args.outputShape ?? qDim;
    this.queryKernel = kernel([qDim, h, keyDim]);
    this.queryBias = bias([h, keyDim]);
    this.keyKernel = kernel([kDim, h, keyDim]);
    this.keyBias = bias([h, keyDim]);
    this.valueKernel = kernel([vDim, h, this.valueDim]);
    this.valueBias = bias([h, this.valueDim]);
    this.outputKernel = kernel([h, this.valueDim, outDim]);
    this.outputBias = bias([outDim]);
    this.outputShape = [null, outDim];
  }

  computeOutputShape(s: LayerShape): LayerShape {
    return [s[0], this.outputKernel?.shape[2] ?? this.args.outputShape ?? s[1]];
  }

  call(): Tensor {
    throw new Error(`layer '${this.name}' (MultiHeadAttention) takes a query and a value: call mha.apply(query, value)`);
  }

  /**
   * Keras's call: mha.apply(query, value, key?, { attentionMask, returnAttentionScores, useCausalMask, training }).
   * On Tensors it returns the output [batch, T, outputShape] (and the scores [batch, heads, T, S] with
   * returnAttentionScores); on sn.input() placeholders it adds the call to the functional graph.
   */
  override apply(inputs: SymbolicTensor | SymbolicTensor[], ...rest: (SymbolicTensor | MultiHeadAttentionCall | undefined)[]): SymbolicTensor | SymbolicTensor[];
  override apply(inputs: Tensor | Tensor[], ...rest: (Tensor | MultiHeadAttentionCall | undefined)[]): Tensor | Tensor[];
  override apply(inputs: Input | Input[], ...rest: (Input | MultiHeadAttentionCall | undefined)[]): Input | Input[] {
    const list = [...(Array.isArray(inputs) ? inputs : [inputs])];
    let options: MultiHeadAttentionCall | null = null;
    for (const r of rest) {
      if (r instanceof SymbolicTensor || r instanceof Tensor) list.push(r);
      else if (r !== undefined) options = r;
    }
    const known = ['attentionMask', 'returnAttentionScores', 'useCausalMask', 'training'];
    const unknown = Object.keys(options ?? {}).filter((k) => !known.includes(k));
    if (unknown.length) throw new Error(`layer '${this.name}': apply() options are ${known.join(', ')}; got ${unknown.join(', ')}`);
    // A list of four is [query, value, key, attentionMask], as the graph stores the call (modelFromJSON replays it).
    if (list.length < 2 || list.length > (options?.attentionMask ? 3 : 4)) throw new Error(`layer '${this.name}': apply() takes query, value and an optional key, got ${list.length} inputs`);
    const [query, value, key = value, listedMask] = list;
    const mask = options?.attentionMask ?? listedMask;
    const ins = mask ? [query, value, key, mask] : [query, value, key];
    // Without options, a graph replayed by modelFromJSON keeps the flags saved in the config.
    const flags: Flags = options ? { returnAttentionScores: !!options.returnAttentionScores, useCausalMask: !!options.useCausalMask }
      : (this.args.callFlags ?? { returnAttentionScores: false, useCausalMask: false });
    if (ins.every((t) => t instanceof SymbolicTensor)) {
      if (this.graphFlags && JSON.stringify(this.graphFlags) !== JSON.stringify(flags)) {
        throw new Error(`layer '${this.name}' is already in a graph with ${JSON.stringify(this.graphFlags)}; use another layer for ${JSON.stringify(flags)}`);
      }
      this.graphFlags = flags;
      return super.apply(ins as SymbolicTensor[]);
    }
    if (ins.some((t) => t instanceof SymbolicTensor)) throw new TypeError(`layer '${this.name}': apply() takes Tensors or sn.input() placeholders, not a mix`);
    const ts = ins as Tensor[];
    this.buildFor(ts.map((t) => t.shape.slice(1)));
    const [out, scores] = this.attend(ts, [null, null], flags, options?.training ?? false);
    return flags.returnAttentionScores ? [out, scores!] : out;
  }

  override invoke(xs: Tensor[], masks: (Tensor | null)[], training: boolean) {
    const flags = this.graphFlags ?? { returnAttentionScores: false, useCausalMask: false };
    const [out, scores] = this.attend(xs, masks, flags, training);
    return { outputs: flags.returnAttentionScores ? [out, scores!] : [out], mask: masks[0] };
  }

  /** [query, value, key, attentionMask?] -> [output, scores]; masks are the query's and value's [batch, time] masks from earlier layers. */
  private attend(xs: Tensor[], masks: (Tensor | null)[], flags: Flags, training: boolean): [Tensor, Tensor | null] {
    const [query, value, key, attentionMask] = xs;
    const { numHeads: h, keyDim } = this.args;
    const [b, t] = query.shape;
    const s = value.shape[1];
    if (value.shape[0] !== b || key.shape[0] !== b || key.shape[1] !== s) {
      throw new ShapeError(`layer '${this.name}': query ${fmt(query.shape)}, value ${fmt(value.shape)} and key ${fmt(key.shape)} need one batch size, and key and value one length`);
    }
    // x [b, len, dim] through an einsum kernel [dim, h, d] -> [b, h, len, d].
    const project = (x: Tensor, kernel: Parameter, bias: Parameter | null) => {
      const [dim, , d] = kernel.shape;
      const flat = kernel.reshape(dim, h * d);
      const y = record('linear', bias ? [x, flat, bias.reshape(h * d)] : [x, flat], { activation: null });
      return y.reshape(b, x.shape[1], h, d).permute(0, 2, 1, 3);
    };
    const q = project(query, this.queryKernel!, this.queryBias);
    const k = project(key, this.keyKernel!, this.keyBias);
    const v = project(value, this.valueKernel!, this.valueBias);

    // Where each query may attend, as 1/0 [b, t, s]: the explicit mask, the causal mask and earlier layers' masks, all ANDed.
    let allowed: Tensor | null = null;
    const and = (m: Tensor) => { allowed = allowed ? allowed.mul(m) : m; };
    if (attentionMask) {
      if (fmt(attentionMask.shape) !== fmt([b, t, s])) throw new ShapeError(`layer '${this.name}': attentionMask ${fmt(attentionMask.shape)} must be [batch, T, S] = ${fmt([b, t, s])} for query ${fmt(query.shape)} and value ${fmt(value.shape)}`);
      and(asAllowed(attentionMask));
    }
    if (masks[0]) and(asAllowed(masks[0]).reshape(b, t, 1));
    if (masks[1]) and(asAllowed(masks[1]).reshape(b, 1, s));
    if (flags.useCausalMask) {
      const causal = new Float32Array(t * s);
      for (let i = 0; i < t; i++) for (let j = 0; j <= Math.min(i, s - 1); j++) causal[i * s + j] = 1;
      and(tensor(causal, [1, t, s]));
    }
    const mask = allowed ? (allowed as Tensor).expand(b, t, s).sub(1).mul(-MASKED).reshape(b, 1, t, s) : null;
    const [heads, probs] = attend(q, k, v, mask, {
      scale: 1 / Math.sqrt(keyDim), dropout: training ? this.args.dropout ?? 0 : 0, needProbs: flags.returnAttentionScores,
    });
    const ctx = heads.permute(0, 2, 1, 3).reshape(b, t, h * this.valueDim);
    const ok = this.outputKernel!;
    const flat = ok.reshape(h * this.valueDim, ok.shape[2]);
    const out = record('linear', this.outputBias ? [ctx, flat, this.outputBias] : [ctx, flat], { activation: null });
    return [out, probs];
  }

  override kerasWeights(): KerasWeight[] {
    const w: [string, Parameter | null][] = [
      ['query/kernel', this.queryKernel], ['query/bias', this.queryBias], ['key/kernel', this.keyKernel], ['key/bias', this.keyBias],
      ['value/kernel', this.valueKernel], ['value/bias', this.valueBias], ['attention_output/kernel', this.outputKernel], ['attention_output/bias', this.outputBias],
    ];
    return w.filter((e): e is [string, Parameter] => e[1] !== null).map(([name, value]) => ({ name, value, trainable: true }));
  }

  getConfig() {
    return { ...this.args, ...(this.graphFlags ? { callFlags: this.graphFlags } : {}) };
  }
}
