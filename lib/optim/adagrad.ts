// Adagrad and Adadelta (torch.optim.Adagrad / Adadelta, PyTorch 1.13's single-tensor rules).

import { Optimizer, type ParamLayout, type Params } from './optimizer.js';
import { pyArgs, type PyRest } from '../nn/args.js';

export interface AdagradOptions {
  lr: number;
  lrDecay: number;
  weightDecay: number;
  initialAccumulatorValue: number;
  eps: number;
  maximize: boolean;
}

export class Adagrad extends Optimizer<AdagradOptions> {
  protected readonly rule = 'adagrad';

  /** PyTorch's order: lr, lrDecay, weightDecay, initialAccumulatorValue, eps. */
  constructor(params: Params<AdagradOptions>, ...rest: PyRest<[lr: number, lrDecay: number, weightDecay: number, initialAccumulatorValue: number, eps: number], Partial<AdagradOptions>>) {
    const { lr = 1e-2, lrDecay = 0, weightDecay = 0, initialAccumulatorValue = 0, eps = 1e-10, maximize = false } = pyArgs<Partial<AdagradOptions>>('Adagrad', rest,
      { lr: 'number', lrDecay: 'number', weightDecay: 'number', initialAccumulatorValue: 'number', eps: 'number' }, { maximize: 'boolean' });
    super(params, { lr, lrDecay, weightDecay, initialAccumulatorValue, eps, maximize });
  }

  protected validate(o: AdagradOptions) {
    for (const k of ['lr', 'lrDecay', 'weightDecay', 'initialAccumulatorValue', 'eps'] as const) {
      if (!(o[k] >= 0)) throw new Error(`Adagrad: invalid ${k} ${o[k]}`);
    }
  }

  protected hyperParameters(o: AdagradOptions) {
    return { lr: o.lr, lrDecay: o.lrDecay, eps: o.eps, sign: o.maximize ? -1 : 1, weightDecay: o.weightDecay };
  }

  /** PyTorch fills the accumulator when the optimizer is built; here at the first step, before any update reads it. */
  protected layout(o: AdagradOptions): ParamLayout {
    return { flags: {}, step: 'state', scalars: 1, keys: ['sum'], fill: o.initialAccumulatorValue };
  }
}

export interface AdadeltaOptions {
  lr: number;
  rho: number;
  eps: number;
  weightDecay: number;
  maximize: boolean;
}

export class Adadelta extends Optimizer<AdadeltaOptions> {
  protected readonly rule = 'adadelta';

  /** PyTorch's order: lr, rho, eps, weightDecay. */
  constructor(params: Params<AdadeltaOptions>, ...rest: PyRest<[lr: number, rho: number, eps: number, weightDecay: number], Partial<AdadeltaOptions>>) {
    const { lr = 1, rho = 0.9, eps = 1e-6, weightDecay = 0, maximize = false } = pyArgs<Partial<AdadeltaOptions>>('Adadelta', rest,
      { lr: 'number', rho: 'number', eps: 'number', weightDecay: 'number' }, { maximize: 'boolean' });
    super(params, { lr, rho, eps, weightDecay, maximize });
  }

  protected validate(o: AdadeltaOptions) {
    if (!(o.lr >= 0)) throw new Error(`Adadelta: invalid learning rate ${o.lr}`);
    if (!(o.rho >= 0 && o.rho <= 1)) throw new Error(`Adadelta: invalid rho value ${o.rho}`);
    if (!(o.eps >= 0)) throw new Error(`Adadelta: invalid epsilon value ${o.eps}`);
    if (!(o.weightDecay >= 0)) throw new Error(`Adadelta: invalid weightDecay value ${o.weightDecay}`);
  }

  protected hyperParameters(o: AdadeltaOptions) {
    return { lr: o.lr, rho: o.rho, oneMinusRho: 1 - o.rho, eps: o.eps, sign: o.maximize ? -1 : 1, weightDecay: o.weightDecay };
  }

  protected layout(): ParamLayout {
    return { flags: {}, step: 'state', scalars: 0, keys: ['square_avg', 'acc_delta'] };
  }
}
