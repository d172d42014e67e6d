// sn.nn.utils: gradient clipping, in the worker (nothing is read back).

import { runtime } from '../context.js';
import { noGrad, Tensor, zeros } from '../tensor.js';

/**
 * Scales the gradients in place so that their total norm (all gradients as one vector) is at most maxNorm,
 * and returns that total norm, before clipping, as a 0-d Tensor (torch.nn.utils.clip_grad_norm_).
 * normType is any p > 0, or Infinity for the largest absolute value. Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (!(normType > 0)) throw new Error(`clipGradNorm: normType must be positive or Infinity, got ${normType}`);
  const grads = [...(params instanceof Tensor ? [params] : params)].flatMap((p) => (p.grad ? [p.grad] : []));
  if (!grads.length) return zeros([]);
  return noGrad(() => {
    let total: Tensor;
    if (normType === Infinity) total = grads.map((g) => g.abs().max()).reduce((a, b) => a.maximum(b));
    else {
      const power = (g: Tensor) => (normType === 2 ? g.square() : normType === 1 ? g.abs() : g.abs().pow(normType));
      const sum = grads.map((g) => power(g).sum()).reduce((a, b) => a.add(b));
      total = normType === 2 ? sum.sqrt() : normType === 1 ? sum : sum.pow(1 / normType);
    }
    // PyTorch's coefficient: maxNorm / (norm + 1e-6), at most 1; every gradient is multiplied by it.
    const coef = total.add(1e-6).rdiv(maxNorm).clamp(undefined, 1);
    runtime().enqueue(['update', 'scale', [coef.id, ...grads.map((g) => g.id)], {}]);
    return total;
  });
}
