// Attention: nn.MultiheadAttention and the transformer encoder, with
// PyTorch 1.13's parameter names, layouts and math (scaled dot product,
// softmax, dropout on the weights, output projection), with
// the attention itself through F's attend: one op ('attention'; under
// sn.init({ attention: 'fused' }) kernels that never hold the [L, S] scores in
// memory, worker/ops/attention.ts), or matmul + softmax where the
// probabilities are wanted (returned weights, dropout on them).

import { fmt, ShapeError } from '../shape.js';
import { tensor, Tensor, where, zeros } from '../tensor.js';
import { attend, gelu, linear, nestedShape } from './functional.js';
import type { ActivationName } from '../ops/activations.js';
import { uniform } from './init.js';
import { Linear } from './layers.js';
import { Dropout } from './dropout.js';
import { LayerNorm } from './norm.js';
import { Module, Parameter, type TensorModule } from './module.js';
import { checkOptions, pyArgs, requireArgs, type PyRest } from './args.js';
import { integer } from '../validate.js';

/** PyTorch's xavier_uniform_ for a [fanOut, fanIn] matrix. */
const xavierUniform = (shape: [number, number]) => {
  const bound = Math.sqrt(6 / (shape[0] + shape[1]));
  return uniform(shape, -bound, bound);
};

/**
 * A mask as an additive float mask: a float32 tensor is added as is; an int32
 * tensor (or nested booleans) is PyTorch's bool mask, where true / non-zero
 * means "may not attend" and becomes -Infinity.
 */
function additiveMask(mask: Tensor | boolean[] | boolean[][] | boolean[][][], name: string): Tensor {
  if (!(mask instanceof Tensor)) {
    if (!Array.isArray(mask)) throw new TypeError(`MultiheadAttention: ${name} must be a Tensor or nested booleans, got ${typeof mask}`);
    mask = tensor(mask.flat(Infinity).map(Number) as number[], nestedShape(mask), { dtype: 'int32' });
  }
  return mask.dtype === 'float32' ? mask : where(mask.ne(0), -Infinity, 0);
}


/** A causal mask for sz steps: 0 on and below the diagonal, -Infinity above (nn.Transformer.generate_square_subsequent_mask). */
export function generateSquareSubsequentMask(sz: number): Tensor {
  integer(sz, 'generateSquareSubsequentMask: sz', 1);
  const data = new Float32Array(sz * sz);
  for (let i = 0; i < sz; i++) for (let j = i + 1; j < sz; j++) data[i * sz + j] = -Infinity;
  return tensor(data, [sz, sz]);
}

export interface MultiheadAttentionOptions {
  /** Dropout probability on the attention weights (training only). */
  dropout?: number;
  /** Biases on the input and output projections. */
  bias?: boolean;
  /** Only false (not supported). */
  addBiasKv?: boolean;
  /** Only false (not supported). */
  addZeroAttn?: boolean;
  /** Features of the key and value inputs; default embedDim. */
  kdim?: number | null;
  vdim?: number | null;
  /** Inputs and outputs as [batch, seq, feature] instead of [seq, batch, feature]. */
  batchFirst?: boolean;
}

export interface AttentionCallOptions {
  /** [N, S] (or [S] unbatched): true / non-zero (int32) keys are ignored; a float mask is added. */
  keyPaddingMask?: Tensor | boolean[] | boolean[][] | null;
  /** [L, S] or [N * numHeads, L, S]: true / non-zero (int32) pairs are blocked; a float mask is added to the scores. */
  attnMask?: Tensor | boolean[][] | boolean[][][] | null;
  /** Also return the attention weights (default true). */
  needWeights?: boolean;
  /** Average the returned weights over the heads (default true): [N, L, S], else [N, numHeads, L, S]. */
  averageAttnWeights?: boolean;
}


/**
 * torch.nn.MultiheadAttention: forward(query, key, value, opts) -> [output, weights].
 * State dict: in_proj_weight [3E, E] and in_proj_bias [3E] (q, k, v stacked),
 * or q_proj_weight / k_proj_weight / v_proj_weight when kdim or vdim differ
 * from embedDim; out_proj.weight / out_proj.bias.
 */
export class MultiheadAttention extends Module {
  in_proj_weight: Parameter | null = null;
  q_proj_weight: Parameter | null = null;
  k_proj_weight: Parameter | null = null;
  v_proj_weight: Parameter | null = null;
  in_proj_bias: Parameter | null;
  out_proj: Linear;
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly batchFirst: boolean;

  /** PyTorch's order: dropout, bias, addBiasKv, addZeroAttn, kdim, vdim, batchFirst. */
  constructor(embedDim: number, numHeads: number,
    ...rest: PyRest<[dropout: number, bias: boolean, addBiasKv: boolean, addZeroAttn: boolean, kdim: number | null, vdim: number | null, batchFirst: boolean], MultiheadAttentionOptions>) {
    super();
    requireArgs('MultiheadAttention', { embedDim: [embedDim, 'count'], numHeads: [numHeads, 'count'] });
    const { dropout: p = 0, bias = true, addBiasKv = false, addZeroAttn = false, kdim = embedDim, vdim = embedDim, batchFirst = false } = pyArgs<MultiheadAttentionOptions>('MultiheadAttention', rest,
      { dropout: 'number', bias: 'boolean', addBiasKv: 'boolean', addZeroAttn: 'boolean', kdim: 'count?', vdim: 'count?', batchFirst: 'boolean' });
    if (addBiasKv || addZeroAttn) throw new RangeError(`MultiheadAttention: ${addBiasKv ? 'addBiasKv' : 'addZeroAttn'} is not supported`);
    if (embedDim % numHeads) throw new RangeError(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    if (!(p >= 0 && p <= 1)) throw new RangeError(`MultiheadAttention: dropout must be in [0, 1], got ${p}`);
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.dropout = p;
    this.kdim = kdim ?? embedDim;
    this.vdim = vdim ?? embedDim;
    this.batchFirst = batchFirst;
    if (this.kdim === embedDim && this.vdim === embedDim) {
      this.in_proj_weight = new Parameter(xavierUniform([3 * embedDim, embedDim]));
    } else {
      this.q_proj_weight = new Parameter(xavierUniform([embedDim, embedDim]));
      this.k_proj_weight = new Parameter(xavierUniform([embedDim, this.kdim]));
      this.v_proj_weight = new Parameter(xavierUniform([embedDim, this.vdim]));
    }
    this.in_proj_bias = bias ? new Parameter(zeros([3 * embedDim])) : null;
    this.out_proj = new Linear(embedDim, embedDim, { bias });
    if (this.out_proj.bias) this.out_proj.bias = new Parameter(zeros([embedDim]));
  }

  forward(query: Tensor, key: Tensor, value: Tensor, options: AttentionCallOptions = {}): [Tensor, Tensor | null] {
    checkOptions('MultiheadAttention.forward', options, ['keyPaddingMask', 'attnMask', 'needWeights', 'averageAttnWeights'], 3, arguments.length);
    const { keyPaddingMask = null, attnMask = null, needWeights = true, averageAttnWeights = true } = options;
    const E = this.embedDim;
    const H = this.numHeads;
    const batched = query.ndim === 3;
    const where3 = `query ${fmt(query.shape)}, key ${fmt(key.shape)}, value ${fmt(value.shape)}`;
    if ((query.ndim !== 2 && query.ndim !== 3) || key.ndim !== query.ndim || value.ndim !== query.ndim) {
      throw new ShapeError(`MultiheadAttention: query, key and value must all be 3-D (batched) or all 2-D (unbatched), got ${where3}`);
    }
    // Work in PyTorch's internal layout [seq, batch, feature].
    const seqFirst = (t: Tensor) => (!batched ? t.unsqueeze(1) : this.batchFirst ? t.transpose(0, 1) : t);
    const q0 = seqFirst(query);
    const k0 = seqFirst(key);
    const v0 = seqFirst(value);
    const [L, N] = q0.shape;
    const S = k0.shape[0];
    if (q0.shape[2] !== E || k0.shape[2] !== this.kdim || v0.shape[2] !== this.vdim || k0.shape[1] !== N || v0.shape[1] !== N || v0.shape[0] !== S) {
      throw new ShapeError(`MultiheadAttention: expected feature sizes ${E}, ${this.kdim}, ${this.vdim} (query, key, value), one batch size and key/value of one length${this.batchFirst ? ' (batchFirst: [batch, seq, feature])' : ' ([seq, batch, feature])'}, got ${where3}`);
    }
    const b = this.in_proj_bias;
    const bq = b?.slice(0, 0, E) ?? null;
    const bk = b?.slice(0, E, 2 * E) ?? null;
    const bv = b?.slice(0, 2 * E) ?? null;
    const w = this.in_proj_weight;
    const wq = w ? w.slice(0, 0, E) : this.q_proj_weight!;
    const wk = w ? w.slice(0, E, 2 * E) : this.k_proj_weight!;
    const wv = w ? w.slice(0, 2 * E) : this.v_proj_weight!;
    // [seq, batch, E] -> [batch, heads, seq, headDim], as PyTorch's view + transpose.
    const heads = (t: Tensor, len: number) => t.reshape(len, N, H, this.headDim).permute(1, 2, 0, 3);
    const q = heads(linear(q0, wq, bq), L);
    const k = heads(linear(k0, wk, bk), S);
    const v = heads(linear(v0, wv, bv), S);

    // Both masks as one additive mask broadcastable to [N, H, L, S].
    let mask: Tensor | null = null;
    if (attnMask != null) {
      mask = additiveMask(attnMask, 'attnMask');
      const ok = mask.ndim === 2 ? fmt(mask.shape) === fmt([L, S]) : mask.ndim === 3 && fmt(mask.shape) === fmt([N * H, L, S]);
      if (!ok) throw new ShapeError(`MultiheadAttention: attnMask ${fmt(mask.shape)} must be [L, S] = ${fmt([L, S])} or [N * numHeads, L, S] = ${fmt([N * H, L, S])} for ${where3}`);
      mask = mask.ndim === 2 ? mask.reshape(1, 1, L, S) : mask.reshape(N, H, L, S);
    }
    if (keyPaddingMask != null) {
      const kpm = additiveMask(keyPaddingMask, 'keyPaddingMask');
      const want = batched ? [N, S] : [S];
      if (fmt(kpm.shape) !== fmt(want)) throw new ShapeError(`MultiheadAttention: keyPaddingMask ${fmt(kpm.shape)} must be ${fmt(want)} for ${where3}`);
      const perBatch = kpm.reshape(N, 1, 1, S);
      mask = mask ? mask.add(perBatch) : perBatch;
    }
    const [heads4, , attn] = attend(q, k, v, mask, { scale: 1 / Math.sqrt(this.headDim), dropout: this.training ? this.dropout : 0, needProbs: needWeights });
    // [N, H, L, headDim] -> [N, L, E]; the projection, then back to the caller's layout.
    let out = this.out_proj.forward(heads4.permute(0, 2, 1, 3).reshape(N, L, E));
    out = !batched ? out.squeeze(0) : this.batchFirst ? out : out.transpose(0, 1);
    if (!needWeights) return [out, null];
    const weights = averageAttnWeights ? attn!.mean(1) : attn!;
    return [out, batched ? weights : weights.squeeze(0)];
  }

  override toString() {
    return `MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear(${this.out_proj.extraRepr()})\n)`;
  }
}

/** PyTorch's TransformerEncoderLayer takes these two names, or a function. */
export type Activation = Extract<ActivationName, 'relu' | 'gelu'> | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  /** 'relu' (default), 'gelu' or a function of a Tensor. */
  activation?: Activation;
  layerNormEps?: number;
  batchFirst?: boolean;
  /** Pre-norm (LayerNorm before attention and feed-forward) instead of post-norm. */
  normFirst?: boolean;
}


export interface EncoderLayerCallOptions {
  /** Passed to self-attention as attnMask, e.g. generateSquareSubsequentMask(L). */
  srcMask?: Tensor | boolean[][] | null;
  /** Passed to self-attention as keyPaddingMask. */
  srcKeyPaddingMask?: Tensor | boolean[][] | null;
}

/** torch.nn.TransformerEncoderLayer: self-attention and a feed-forward block, each with a residual and LayerNorm. */
export class TransformerEncoderLayer extends Module {
  self_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly dModel: number;
  readonly nhead: number;
  readonly options: Required<TransformerEncoderLayerOptions>;

  /** PyTorch's order: dimFeedforward, dropout, activation, layerNormEps, batchFirst, normFirst. */
  constructor(dModel: number, nhead: number,
    ...rest: PyRest<[dimFeedforward: number, dropout: number, activation: Activation, layerNormEps: number, batchFirst: boolean, normFirst: boolean], TransformerEncoderLayerOptions>) {
    super();
    requireArgs('TransformerEncoderLayer', { dModel: [dModel, 'count'], nhead: [nhead, 'count'] });
    const { dimFeedforward = 2048, dropout: p = 0.1, activation = 'relu', layerNormEps = 1e-5, batchFirst = false, normFirst = false } = pyArgs<TransformerEncoderLayerOptions>('TransformerEncoderLayer', rest,
      { dimFeedforward: 'count', dropout: 'number', activation: 'any', layerNormEps: 'number', batchFirst: 'boolean', normFirst: 'boolean' });
    if (typeof activation !== 'string' && typeof activation !== 'function') throw new TypeError(`TransformerEncoderLayer: activation must be 'relu', 'gelu' or a function, got ${typeof activation}`);
    if (activation !== 'relu' && activation !== 'gelu' && typeof activation !== 'function') {
      throw new RangeError(`TransformerEncoderLayer: activation must be 'relu', 'gelu' or a function, got ${String(activation)}`);
    }
    this.dModel = dModel;
    this.nhead = nhead;
    this.options = { dimFeedforward, dropout: p, activation, layerNormEps, batchFirst, normFirst };
    this.self_attn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst });
    this.linear1 = new Linear(dModel, dimFeedforward);
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(dimFeedforward, dModel);
    this.norm1 = new LayerNorm(dModel, { eps: layerNormEps });
    this.norm2 = new LayerNorm(dModel, { eps: layerNormEps });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
  }

  forward(src: Tensor, options: EncoderLayerCallOptions = {}): Tensor {
    checkOptions('TransformerEncoderLayer.forward', options, ['srcMask', 'srcKeyPaddingMask'], 1, arguments.length);
    const { srcMask = null, srcKeyPaddingMask = null } = options;
    const selfAttention = (x: Tensor) =>
      this.dropout1.forward(this.self_attn.forward(x, x, x, { attnMask: srcMask, keyPaddingMask: srcKeyPaddingMask, needWeights: false })[0]);
    const feedForward = (x: Tensor) => this.dropout2.forward(this.linear2.forward(this.dropout.forward(this.activate(this.linear1.forward(x)))));
    if (this.options.normFirst) {
      const x = src.add(selfAttention(this.norm1.forward(src)));
      return x.add(feedForward(this.norm2.forward(x)));
    }
    const x = this.norm1.forward(src.add(selfAttention(src)));
    return this.norm2.forward(x.add(feedForward(x)));
  }

  private activate(x: Tensor): Tensor {
    const a = this.options.activation;
    return a === 'relu' ? x.relu() : a === 'gelu' ? gelu(x) : a(x);
  }

  /** A new layer with the same options and a copy of these weights (what PyTorch's deepcopy gives TransformerEncoder). */
  copy(): TransformerEncoderLayer {
    const layer = new TransformerEncoderLayer(this.dModel, this.nhead, this.options);
    layer.loadStateDict(this.stateDict());
    layer.train(this.training);
    return layer;
  }
}

/** torch.nn.TransformerEncoder: numLayers copies of a layer (same initial weights, as PyTorch's deepcopy), then an optional norm. */
export class TransformerEncoder extends Module {
  layers: TransformerEncoderLayer[];
  norm: TensorModule | null;
  readonly numLayers: number;

  /** PyTorch's order: norm, enableNestedTensor (accepted; nested tensors are a PyTorch speed-up with no counterpart here). */
  constructor(encoderLayer: TransformerEncoderLayer, numLayers: number, ...rest: PyRest<[norm: TensorModule | null, enableNestedTensor: boolean], { norm?: TensorModule | null; enableNestedTensor?: boolean }>) {
    super();
    const options = pyArgs<{ norm?: TensorModule | null }>('TransformerEncoder', rest, { norm: 'module?', enableNestedTensor: 'boolean' });
    if (!(encoderLayer instanceof TransformerEncoderLayer)) throw new TypeError('TransformerEncoder: encoderLayer must be a TransformerEncoderLayer');
    integer(numLayers, 'TransformerEncoder: numLayers', 1);
    this.numLayers = numLayers;
    this.layers = Array.from({ length: numLayers }, () => encoderLayer.copy());
    this.norm = options.norm ?? null;
  }

  /** mask and srcKeyPaddingMask go to every layer (PyTorch's forward(src, mask, src_key_padding_mask)). */
  forward(src: Tensor, options: { mask?: Tensor | boolean[][] | null; srcKeyPaddingMask?: Tensor | boolean[][] | null } = {}): Tensor {
    checkOptions('TransformerEncoder.forward', options, ['mask', 'srcKeyPaddingMask'], 1, arguments.length);
    const { mask = null, srcKeyPaddingMask = null } = options;
    const out = this.layers.reduce((x, layer) => layer.forward(x, { srcMask: mask, srcKeyPaddingMask }), src);
    return this.norm ? this.norm.forward(out) : out;
  }
}
