// Specs of the ops behind sn.nn's layers and losses (implemented in worker/ops/nn.ts).

import { fmt, sameShape, ShapeError, type Shape } from '../shape.js';
import { defineSpec, meta, type Meta } from './spec.js';

export interface PadAttrs {
  /** [before, after] pairs, last dim first (torch.nn.functional.pad's order). */
  pad: number[];
  value?: number;
}

export function paddedShape(shape: Shape, pad: number[]): number[] {
  if (pad.length % 2 || pad.length / 2 > shape.length || pad.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new ShapeError(`pad: [${pad.join(', ')}] is not a list of non-negative [before, after] pairs for ${fmt(shape)}`);
  }
  const out = [...shape];
  for (let i = 0; i < pad.length / 2; i++) out[shape.length - 1 - i] += pad[2 * i] + pad[2 * i + 1];
  return out;
}

/** Constant padding of the trailing dims. */
export const pad = defineSpec<PadAttrs>({
  shape: ([a], { pad }) => meta(paddedShape(a.shape, pad), a.dtype),
});

/** Rows of weight [num, dim] picked by int32 indices of any shape; the paddingIdx row never receives gradient. */
export const embedding = defineSpec<{ paddingIdx?: number }>({
  shape: ([w, idx]) => {
    if (w.shape.length !== 2) throw new ShapeError(`embedding: weight must be [numEmbeddings, embeddingDim], got ${fmt(w.shape)}`);
    if (idx.dtype !== 'int32') throw new ShapeError(`embedding: indices must be int32, got ${idx.dtype}`);
    return meta([...idx.shape, w.shape[1]], w.dtype);
  },
});

/** GELU with PyTorch's approximate='tanh'. */
export const geluTanh = defineSpec<{}>({
  shape: ([a]) => meta(a.shape, 'float32'),
});

/** Unreduced binary cross-entropy of probabilities. */
export const binaryCrossEntropy = defineSpec<{}>({
  shape: ([p, t]) => {
    if (!sameShape(p.shape, t.shape)) throw new ShapeError(`binaryCrossEntropy: target ${fmt(t.shape)} must have the input's shape ${fmt(p.shape)}`);
    return meta(p.shape, 'float32');
  },
});

export interface SoftmaxCrossEntropyAttrs {
  /** Sparse targets equal to it count for nothing (PyTorch's ignore_index); null ignores none. */
  ignoreIndex: number | null;
  labelSmoothing: number;
  reduction: 'mean' | 'sum' | 'none';
  /** The loss the page called, for errors (crossEntropy, categoricalCrossentropy, ...). */
  loss: string;
  /** Float32 [N] targets are class numbers (Keras labels), read as int32 would be. */
  floatClasses?: boolean;
}

/** Class targets of scores [N, C]: int32 classes [N] (float32 ones with floatClasses), or float32 distributions [N, C]. */
function classTargets(x: Meta, t: Meta, op: string, floatClasses = false): void {
  if (x.shape.length !== 2) throw new ShapeError(`${op}: expected class scores [N, C], got ${fmt(x.shape)}`);
  if ((t.dtype === 'int32' || floatClasses) && t.shape.length === 1 && t.shape[0] === x.shape[0]) return;
  if (t.dtype === 'float32' && sameShape(t.shape, x.shape)) return;
  throw new ShapeError(`${op}: for input ${fmt(x.shape)} the target must be int32 class indices of shape [${x.shape[0]}] or float32 probabilities of the input's shape, got ${t.dtype} ${fmt(t.shape)}`);
}

/**
 * log_softmax of scores [N, C] over classes, then the (weighted, smoothed) negative
 * log-likelihood of the targets, reduced: one kernel forward, one backward. Inputs
 * [scores, target] or [scores, target, weight [C]]; gradient flows to the scores only.
 */
export const softmaxCrossEntropy = defineSpec<SoftmaxCrossEntropyAttrs>({
  shape: ([x, t, w], { reduction, loss, floatClasses }) => {
    classTargets(x, t, loss, floatClasses);
    if (w && (w.shape.length !== 1 || w.shape[0] !== x.shape[1])) throw new ShapeError(`${loss}: weight ${fmt(w.shape)} must be [${x.shape[1]}], one per class of ${fmt(x.shape)}`);
    return meta(reduction === 'none' ? [x.shape[0]] : [], 'float32');
  },
});

/**
 * The fraction of rows of scores [N, C] whose argmax is the target class (int32 [N], or the
 * argmax of a float32 [N, C] row); `softmax` takes the argmax of softmax(scores) (Keras
 * accuracy of a softmax layer read from its logits).
 */
export const classAccuracy = defineSpec<{ softmax: boolean; floatClasses?: boolean }>({
  shape: ([x, t], { floatClasses }) => {
    classTargets(x, t, 'accuracy', floatClasses);
    return meta([], 'float32');
  },
  differentiable: false,
});
