// RMSprop, optionally centered and with momentum (torch.optim.RMSprop).

import { Optimizer, type ParamLayout, type Params } from './optimizer.js';
import { pyArgs, type PyRest } from '../nn/args.js';

export interface RMSpropOptions {
  lr: number;
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

export class RMSprop extends Optimizer<RMSpropOptions> {
  protected readonly rule = 'rmsprop';

  /** PyTorch's order: lr, alpha, eps, weightDecay, momentum, centered. */
  constructor(params: Params<RMSpropOptions>, ...rest: PyRest<[lr: number, alpha: number, eps: number, weightDecay: number, momentum: number, centered: boolean], Partial<RMSpropOptions>>) {
    const { lr = 1e-2, alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0, centered = false, maximize = false } = pyArgs<Partial<RMSpropOptions>>('RMSprop', rest,
      { lr: 'number', alpha: 'number', eps: 'number', weightDecay: 'number', momentum: 'number', centered: 'boolean' }, { maximize: 'boolean' });
    super(params, { lr, alpha, eps, weightDecay, momentum, centered, maximize });
  }

  protected validate(o: RMSpropOptions) {
    for (const k of ['lr', 'eps', 'momentum', 'weightDecay', 'alpha'] as const) {
      if (!(o[k] >= 0)) throw new Error(`RMSprop: invalid ${k} ${o[k]}`);
    }
  }

  protected hyperParameters(o: RMSpropOptions) {
    return { lr: o.lr, alpha: o.alpha, oneMinusAlpha: 1 - o.alpha, eps: o.eps, sign: o.maximize ? -1 : 1, weightDecay: o.weightDecay, momentum: o.momentum };
  }

  protected layout(o: RMSpropOptions): ParamLayout {
    const flags = { momentum: o.momentum > 0, centered: o.centered };
    return { flags, step: 'state', scalars: 0, keys: ['square_avg', ...(flags.momentum ? ['momentum_buffer'] : []), ...(flags.centered ? ['grad_avg'] : [])] };
  }
}
