// Adam (L2 weight decay folded into the gradient) and AdamW (decoupled weight decay), with amsgrad.

import { Optimizer, type ParamLayout, type Params } from './optimizer.js';
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
    // Weight decay is L2 in the gradient (Adam) or a decay of the parameter (AdamW); the other is 0 (1).
    return {
      lr: o.lr, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, eps: o.eps,
      logBeta1: Math.log(beta1), logBeta2: Math.log(beta2), sign: o.maximize ? -1 : 1,
      weightDecay: this.decoupled ? 0 : o.weightDecay, decay: this.decoupled ? 1 - o.lr * o.weightDecay : 1,
    };
  }

  protected layout(o: AdamOptions): ParamLayout {
    return { flags: { amsgrad: o.amsgrad }, step: 'state', scalars: 2, keys: ['exp_avg', 'exp_avg_sq', ...(o.amsgrad ? ['max_exp_avg_sq'] : [])] };
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
