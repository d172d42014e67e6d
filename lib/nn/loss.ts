// Loss modules: forward(input, target) with PyTorch's reductions. The math
// lives in functional.ts; a module holds the options (and class weights,
// which PyTorch saves in the state dict as a buffer). Constructors take
// PyTorch's positional order, deprecated sizeAverage/reduce included (mapped
// to a reduction as PyTorch does), then one options object.

import type { Tensor } from '../tensor.js';
import * as F from './functional.js';
import { Buffer, Module } from './module.js';
import { pyArgs, type ArgSpec, type PyRest } from './args.js';

export type Reduction = F.Reduction;

interface LegacyReduction {
  /** Deprecated in PyTorch: false means 'sum'. */
  sizeAverage?: boolean | null;
  /** Deprecated in PyTorch: false means 'none'. */
  reduce?: boolean | null;
  reduction?: Reduction;
}

const LEGACY: ArgSpec = { sizeAverage: 'boolean?', reduce: 'boolean?' };

abstract class Loss extends Module {
  readonly reduction: Reduction;

  constructor({ sizeAverage = null, reduce = null, reduction = 'mean' }: LegacyReduction) {
    super();
    // PyTorch's legacy_get_string: either deprecated flag, when given, overrides reduction.
    if (sizeAverage !== null || reduce !== null) reduction = reduce === false ? 'none' : sizeAverage === false ? 'sum' : 'mean';
    if (!['mean', 'sum', 'none'].includes(reduction)) throw new RangeError(`${this.constructor.name}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
    this.reduction = reduction;
  }

  abstract override forward(input: Tensor, target: Tensor): Tensor;
}

type LegacyPositional = [sizeAverage: boolean | null, reduce: boolean | null, reduction: Reduction];

export class MSELoss extends Loss {
  constructor(...rest: PyRest<LegacyPositional, LegacyReduction>) { super(pyArgs('MSELoss', rest, { ...LEGACY, reduction: 'string' })); }
  forward(input: Tensor, target: Tensor) { return F.mseLoss(input, target, this); }
}

export class L1Loss extends Loss {
  constructor(...rest: PyRest<LegacyPositional, LegacyReduction>) { super(pyArgs('L1Loss', rest, { ...LEGACY, reduction: 'string' })); }
  forward(input: Tensor, target: Tensor) { return F.l1Loss(input, target, this); }
}

export class HuberLoss extends Loss {
  readonly delta: number;
  constructor(...rest: PyRest<[reduction: Reduction, delta: number], { reduction?: Reduction; delta?: number }>) {
    const opts = pyArgs<{ reduction?: Reduction; delta?: number }>('HuberLoss', rest, { reduction: 'string', delta: 'number' });
    super(opts);
    const { delta = 1 } = opts;
    if (!(delta > 0)) throw new RangeError(`HuberLoss: delta must be positive, got ${delta}`);
    this.delta = delta;
  }
  forward(input: Tensor, target: Tensor) { return F.huberLoss(input, target, this); }
}

/** Class weights as a buffer (in stateDict as 'weight', like PyTorch), or null. */
const weightBuffer = (w: Tensor | null | undefined) => (w ? new Buffer(w) : null);

interface ClassLossOptions extends LegacyReduction {
  weight?: Tensor | null;
  ignoreIndex?: number;
}

export class NLLLoss extends Loss {
  weight: Buffer | null;
  readonly ignoreIndex: number;
  constructor(...rest: PyRest<[weight: Tensor | null, sizeAverage: boolean | null, ignoreIndex: number, reduce: boolean | null, reduction: Reduction], ClassLossOptions>) {
    const opts = pyArgs<ClassLossOptions>('NLLLoss', rest, { weight: 'tensor?', sizeAverage: 'boolean?', ignoreIndex: 'int', reduce: 'boolean?', reduction: 'string' });
    super(opts);
    this.weight = weightBuffer(opts.weight);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
  }
  forward(input: Tensor, target: Tensor) { return F.nllLoss(input, target, this); }
}

/**
 * torch.nn.CrossEntropyLoss: log-softmax and negative log-likelihood of logits [N, C] (or [N, C, ...]).
 * The target is either int32 class indices [N] (as PyTorch's int64: make them with
 * `sn.tensor(labels, [n], { dtype: 'int32' })` or from an Int32Array; a float32 tensor of indices
 * is taken for probabilities and fails the shape check) or float32 class probabilities shaped like the input.
 *
 * @example
 * const loss = new sn.nn.CrossEntropyLoss().forward(logits, sn.tensor([2, 0, 1], [3], { dtype: 'int32' }));
 */
export class CrossEntropyLoss extends Loss {
  weight: Buffer | null;
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;
  constructor(...rest: PyRest<[weight: Tensor | null, sizeAverage: boolean | null, ignoreIndex: number, reduce: boolean | null, reduction: Reduction, labelSmoothing: number],
    ClassLossOptions & { labelSmoothing?: number }>) {
    const opts = pyArgs<ClassLossOptions & { labelSmoothing?: number }>('CrossEntropyLoss', rest,
      { weight: 'tensor?', sizeAverage: 'boolean?', ignoreIndex: 'int', reduce: 'boolean?', reduction: 'string', labelSmoothing: 'number' });
    super(opts);
    const { labelSmoothing = 0 } = opts;
    if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new RangeError(`CrossEntropyLoss: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
    this.weight = weightBuffer(opts.weight);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.labelSmoothing = labelSmoothing;
  }
  /** input: logits [N, C, ...]; target: int32 classes [N, ...] or float probabilities shaped like input. */
  forward(input: Tensor, target: Tensor) { return F.crossEntropy(input, target, this); }
}

export class BCELoss extends Loss {
  weight: Buffer | null;
  constructor(...rest: PyRest<[weight: Tensor | null, ...LegacyPositional], LegacyReduction & { weight?: Tensor | null }>) {
    const opts = pyArgs<LegacyReduction & { weight?: Tensor | null }>('BCELoss', rest, { weight: 'tensor?', ...LEGACY, reduction: 'string' });
    super(opts);
    this.weight = weightBuffer(opts.weight);
  }
  /** input: probabilities in [0, 1]. */
  forward(input: Tensor, target: Tensor) { return F.binaryCrossEntropy(input, target, this); }
}

export class BCEWithLogitsLoss extends Loss {
  weight: Buffer | null;
  pos_weight: Buffer | null;
  constructor(...rest: PyRest<[weight: Tensor | null, ...LegacyPositional, posWeight: Tensor | null], LegacyReduction & { weight?: Tensor | null; posWeight?: Tensor | null }>) {
    const opts = pyArgs<LegacyReduction & { weight?: Tensor | null; posWeight?: Tensor | null }>('BCEWithLogitsLoss', rest,
      { weight: 'tensor?', ...LEGACY, reduction: 'string', posWeight: 'tensor?' });
    super(opts);
    this.weight = weightBuffer(opts.weight);
    this.pos_weight = weightBuffer(opts.posWeight);
  }
  forward(input: Tensor, target: Tensor) {
    return F.binaryCrossEntropyWithLogits(input, target, { weight: this.weight, posWeight: this.pos_weight, reduction: this.reduction });
  }
}
