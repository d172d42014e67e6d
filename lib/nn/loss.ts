// Loss modules: forward(input, target) with PyTorch's reductions. The math
// lives in functional.ts; a module holds the options (and class weights,
// which PyTorch saves in the state dict as a buffer).

import type { Tensor } from '../tensor.js';
import * as F from './functional.js';
import { Buffer, Module } from './module.js';

export type Reduction = F.Reduction;

abstract class Loss extends Module {
  readonly reduction: Reduction;

  constructor(reduction: Reduction = 'mean') {
    super();
    if (!['mean', 'sum', 'none'].includes(reduction)) throw new RangeError(`${this.constructor.name}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
    this.reduction = reduction;
  }

  abstract override forward(input: Tensor, target: Tensor): Tensor;
}

export class MSELoss extends Loss {
  constructor({ reduction }: { reduction?: Reduction } = {}) { super(reduction); }
  forward(input: Tensor, target: Tensor) { return F.mseLoss(input, target, this); }
}

export class L1Loss extends Loss {
  constructor({ reduction }: { reduction?: Reduction } = {}) { super(reduction); }
  forward(input: Tensor, target: Tensor) { return F.l1Loss(input, target, this); }
}

export class HuberLoss extends Loss {
  readonly delta: number;
  constructor({ delta = 1, reduction }: { delta?: number; reduction?: Reduction } = {}) {
    super(reduction);
    if (!(delta > 0)) throw new RangeError(`HuberLoss: delta must be positive, got ${delta}`);
    this.delta = delta;
  }
  forward(input: Tensor, target: Tensor) { return F.huberLoss(input, target, this); }
}

/** Class weights as a buffer (in stateDict as 'weight', like PyTorch), or null. */
const weightBuffer = (w: Tensor | null | undefined) => (w ? new Buffer(w) : null);

export class NLLLoss extends Loss {
  weight: Buffer | null;
  readonly ignoreIndex: number;
  constructor({ weight, ignoreIndex = -100, reduction }: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}) {
    super(reduction);
    this.weight = weightBuffer(weight);
    this.ignoreIndex = ignoreIndex;
  }
  forward(input: Tensor, target: Tensor) { return F.nllLoss(input, target, this); }
}

export class CrossEntropyLoss extends Loss {
  weight: Buffer | null;
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;
  constructor({ weight, ignoreIndex = -100, labelSmoothing = 0, reduction }: { weight?: Tensor | null; ignoreIndex?: number; labelSmoothing?: number; reduction?: Reduction } = {}) {
    super(reduction);
    if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new RangeError(`CrossEntropyLoss: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
    this.weight = weightBuffer(weight);
    this.ignoreIndex = ignoreIndex;
    this.labelSmoothing = labelSmoothing;
  }
  /** input: logits [N, C, ...]; target: int32 classes [N, ...] or float probabilities shaped like input. */
  forward(input: Tensor, target: Tensor) { return F.crossEntropy(input, target, this); }
}

export class BCELoss extends Loss {
  weight: Buffer | null;
  constructor({ weight, reduction }: { weight?: Tensor | null; reduction?: Reduction } = {}) {
    super(reduction);
    this.weight = weightBuffer(weight);
  }
  /** input: probabilities in [0, 1]. */
  forward(input: Tensor, target: Tensor) { return F.binaryCrossEntropy(input, target, this); }
}

export class BCEWithLogitsLoss extends Loss {
  weight: Buffer | null;
  pos_weight: Buffer | null;
  constructor({ weight, posWeight, reduction }: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}) {
    super(reduction);
    this.weight = weightBuffer(weight);
    this.pos_weight = weightBuffer(posWeight);
  }
  forward(input: Tensor, target: Tensor) {
    return F.binaryCrossEntropyWithLogits(input, target, { weight: this.weight, posWeight: this.pos_weight, reduction: this.reduction });
  }
}
