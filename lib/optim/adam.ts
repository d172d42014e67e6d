// Adam (L2 weight decay folded into the gradient) and AdamW (decoupled weight decay), with amsgrad.

import type { Tensor } from '../tensor.js';
import { Optimizer, type ParamState, type ParamUpdate, type Params } from './optimizer.js';
import { pyArgs, type ArgSpec, type PyRest } from '../nn/args.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected readonly rule = 'adam';
  protected abstract readonly decoupled: boolean;

  protected validate(o: AdamOptions) {
    const name = this.constructor.name;
    if (!(o.lr >= 0)) throw new Error(`${name}: invalid learning rate ${o.lr}`);
    if (!(o.eps >= 0)) throw new Error(`${name}: invalid epsilon ${o.eps}`);
    o.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new Error(`${name}: invalid beta parameter at index ${i}: ${b}`);
    });
    if (!(o.weightDecay >= 0)) throw new Error(`${name}: invalid weightDecay ${o.weightDecay}`);
  }

  protected hyperParameters(o: AdamOptions) {
    const [beta1, beta2] = o.betas;
    // Bias corrections 1 - beta^t are computed on the device from log(beta) and the step count.
    return {
      lr: o.lr, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, eps: o.eps,
      logBeta1: Math.log(beta1), logBeta2: Math.log(beta2),
      weightDecay: o.weightDecay, decay: 1 - o.lr * o.weightDecay,
    };
  }

  protected prepare(o: AdamOptions, state: ParamState, p: Tensor): ParamUpdate {
    const flags = { maximize: o.maximize, weightDecay: o.weightDecay !== 0, decoupled: this.decoupled, amsgrad: o.amsgrad };
    const moments = [this.stepCount(state), this.buffer(state, 'exp_avg', p), this.buffer(state, 'exp_avg_sq', p)];
    if (o.amsgrad) moments.push(this.buffer(state, 'max_exp_avg_sq', p));
    return { flags, state: moments };
  }
}

/** PyTorch's positional order after params; maximize is keyword-only there too. */
const ADAM_ARGS: ArgSpec = { lr: 'number', betas: 'numberPair', eps: 'number', weightDecay: 'number', amsgrad: 'boolean' };
type AdamRest = PyRest<[lr: number, betas: [number, number], eps: number, weightDecay: number, amsgrad: boolean], Partial<AdamOptions>>;

export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, ...rest: AdamRest) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, amsgrad = false, maximize = false } = pyArgs<Partial<AdamOptions>>('Adam', rest, ADAM_ARGS, { maximize: 'boolean' });
    super(params, { lr, betas: [...betas], eps, weightDecay, amsgrad, maximize });
  }
}

/** Adam with weight decay applied to the parameter, not the gradient (Loshchilov & Hutter). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, ...rest: AdamRest) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, amsgrad = false, maximize = false } = pyArgs<Partial<AdamOptions>>('AdamW', rest, ADAM_ARGS, { maximize: 'boolean' });
    super(params, { lr, betas: [...betas], eps, weightDecay, amsgrad, maximize });
  }
}
