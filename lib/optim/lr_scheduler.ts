// Learning-rate schedulers (torch.optim.lr_scheduler). Each uses PyTorch's
// recursive ("chainable") form, which updates the groups' current lr, so the
// values match PyTorch step for step, including past CosineAnnealingLR's tMax.

import type { Optimizer } from './optimizer.js';
import { pyArgs, type PyRest } from '../nn/args.js';

export interface SchedulerState {
  lastEpoch: number;
  baseLrs: number[];
  lastLr: number[];
}

export abstract class LRScheduler {
  /** Steps taken; 0 right after construction, as in PyTorch. */
  lastEpoch = -1;
  readonly baseLrs: number[];
  private lastLr: number[] = [];

  constructor(readonly optimizer: Optimizer<{ lr: number }>) {
    for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
  }

  /** The groups' next learning rates, from their current ones. */
  protected abstract getLr(): number[];

  /** Subclasses call this once their options are set: epoch 0 keeps the initial learning rates. */
  protected initialStep() {
    this.step();
  }

  /** Advances one epoch and writes the new learning rates into the optimizer's groups. */
  step() {
    this.lastEpoch++;
    const lrs = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]));
    // Into the device state now, so a step the worker replays on its own (Keras fit) sees it too.
    this.optimizer.syncHyperParameters();
    this.lastLr = lrs;
  }

  /** The learning rates the last step() set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  protected currentLrs() {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): SchedulerState {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs], lastLr: [...this.lastLr] };
  }

  loadStateDict(sd: SchedulerState) {
    this.lastEpoch = sd.lastEpoch;
    this.baseLrs.splice(0, this.baseLrs.length, ...sd.baseLrs);
    this.lastLr = [...sd.lastLr];
  }
}

/** Multiplies the learning rate by gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: Optimizer<{ lr: number }>, ...rest: PyRest<[stepSize: number, gamma: number], { stepSize?: number; gamma?: number }>) {
    super(optimizer);
    const { stepSize = NaN, gamma = 0.1 } = pyArgs<{ stepSize?: number; gamma?: number }>('StepLR', rest, { stepSize: 'int', gamma: 'number' });
    if (!(Number.isInteger(stepSize) && stepSize > 0)) throw new Error(`StepLR: stepSize must be a positive integer, got ${stepSize}`);
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.initialStep();
  }

  protected getLr() {
    const lrs = this.currentLrs();
    return this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0 ? lrs : lrs.map((lr) => lr * this.gamma);
  }
}

/** Multiplies the learning rate by gamma every epoch. */
export class ExponentialLR extends LRScheduler {
  readonly gamma: number;

  constructor(optimizer: Optimizer<{ lr: number }>, ...rest: PyRest<[gamma: number], { gamma?: number }>) {
    super(optimizer);
    const { gamma } = pyArgs<{ gamma?: number }>('ExponentialLR', rest, { gamma: 'number' });
    if (gamma === undefined) throw new TypeError('ExponentialLR: gamma is required: new ExponentialLR(optimizer, 0.9)');
    this.gamma = gamma;
    this.initialStep();
  }

  protected getLr() {
    const lrs = this.currentLrs();
    return this.lastEpoch === 0 ? lrs : lrs.map((lr) => lr * this.gamma);
  }
}

/** Cosine annealing from the initial lr down to etaMin over tMax epochs (and back up after, as PyTorch does). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(optimizer: Optimizer<{ lr: number }>, ...rest: PyRest<[tMax: number, etaMin: number], { tMax?: number; etaMin?: number }>) {
    super(optimizer);
    const { tMax = NaN, etaMin = 0 } = pyArgs<{ tMax?: number; etaMin?: number }>('CosineAnnealingLR', rest, { tMax: 'number', etaMin: 'number' });
    if (!(tMax > 0)) throw new Error(`CosineAnnealingLR: tMax must be positive, got ${tMax}`);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.initialStep();
  }

  protected getLr() {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    const lrs = this.currentLrs();
    if (e === 0) return lrs;
    // Python's modulo: non-negative for a positive divisor.
    const m = 2 * T;
    if ((((e - 1 - T) % m) + m) % m === 0) return lrs.map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    return lrs.map((lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - etaMin) + etaMin);
  }
}
