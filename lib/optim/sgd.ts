// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD).

import { Optimizer, type ParamLayout, type Params } from './optimizer.js';
import { pyArgs, type PyRest } from '../nn/args.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  protected readonly rule = 'sgd';

  /** lr is required, here or in every parameter group. PyTorch's order: lr, momentum, dampening, weightDecay, nesterov. */
  constructor(params: Params<SGDOptions>, ...rest: PyRest<[lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean], Partial<SGDOptions>>) {
    const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0, maximize = false } = pyArgs<Partial<SGDOptions>>('SGD', rest,
      { lr: 'number', momentum: 'number', dampening: 'number', weightDecay: 'number', nesterov: 'boolean' }, { maximize: 'boolean' });
    super(params, { lr, momentum, dampening, nesterov, weightDecay, maximize });
  }

  protected validate(o: SGDOptions) {
    if (!(o.lr >= 0)) throw new Error(`SGD: invalid learning rate ${o.lr}`);
    if (!(o.momentum >= 0)) throw new Error(`SGD: invalid momentum ${o.momentum}`);
    if (!(o.weightDecay >= 0)) throw new Error(`SGD: invalid weightDecay ${o.weightDecay}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error('SGD: Nesterov momentum requires a momentum and zero dampening');
  }

  protected hyperParameters(o: SGDOptions) {
    return { lr: o.lr, sign: o.maximize ? -1 : 1, weightDecay: o.weightDecay, momentum: o.momentum, dampened: 1 - o.dampening, nesterov: +o.nesterov };
  }

  /** With momentum, a hidden step count tells the first step, where the buffer starts as the gradient itself (as in PyTorch). */
  protected layout(o: SGDOptions): ParamLayout {
    const momentum = o.momentum !== 0;
    return momentum ? { flags: { momentum }, step: 'hidden', scalars: 1, keys: ['momentum_buffer'] } : { flags: {}, step: null, scalars: 0, keys: [] };
  }
}
