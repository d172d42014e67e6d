// Keras loss and metric functions, built from tensor ops. When the model's
// last layer is a softmax or sigmoid dense layer, cross-entropies work on its
// logits (as TF Keras does) for stability and one kernel less.

import { sameShape } from '../shape.js';
import { noGrad, record, type Tensor } from '../tensor.js';

/** What a loss sees of the model's output. */
export interface Prediction {
  /** The model's output. */
  pred: Tensor;
  /** Pre-activation output and the activation, when the last layer is dense. */
  logits: Tensor | null;
  activation: string;
}

export type LossFn = (yTrue: Tensor, p: Prediction) => Tensor;
export type CustomLoss = (yTrue: Tensor, yPred: Tensor) => Tensor;

const EPS = 1e-7;

const classIndices = (y: Tensor) => (y.shape.length === 2 && y.shape[1] === 1 ? y.reshape([y.shape[0]]) : y).int();

const logProbs = ({ pred, logits, activation }: Prediction) =>
  logits && activation === 'softmax' ? logits.logSoftmax(-1) : pred.clamp(EPS, 1 - EPS).log();

/** Logits [N, C] of a softmax layer: cross-entropies and accuracy run as one fused kernel each from them. */
const softmaxLogits = ({ logits, activation }: Prediction) => (logits && activation === 'softmax' && logits.ndim === 2 ? logits : null);

const fusedCrossEntropy = (logits: Tensor, target: Tensor, loss: string) =>
  record('softmaxCrossEntropy', [logits, target], { ignoreIndex: null, labelSmoothing: 0, reduction: 'mean', loss, floatClasses: target.ndim === 1 });

/** Class labels [N] (or [N, 1]) as they are: the fused kernels read float labels as int32 would be, with no cast kernel. */
const labels = (y: Tensor) => (y.shape.length === 2 && y.shape[1] === 1 ? y.reshape([y.shape[0]]) : y);

export const LOSSES = {
  categoricalCrossentropy: (y, p) => {
    const logits = softmaxLogits(p);
    if (logits && !y.requiresGrad) return fusedCrossEntropy(logits, y.float(), 'categoricalCrossentropy');
    return logProbs(p).mul(y).sum(-1).mean().neg();
  },
  sparseCategoricalCrossentropy: (y, p) => {
    const logits = softmaxLogits(p);
    if (logits && labels(y).ndim === 1) return fusedCrossEntropy(logits, labels(y), 'sparseCategoricalCrossentropy');
    const idx = classIndices(y);
    // An out-of-range label is reported as the loss's, not as the gather's.
    return record('gather', [logProbs(p), idx.reshape([idx.shape[0], 1])], { dim: 1, targetsOf: 'sparseCategoricalCrossentropy' }).mean().neg();
  },
  binaryCrossentropy: (y, { pred, logits, activation }) => {
    if (logits && activation === 'sigmoid') {
      // max(z, 0) - z*y + log(1 + exp(-|z|)): never overflows.
      return logits.relu().sub(logits.mul(y)).add(logits.abs().neg().exp().add(1).log()).mean();
    }
    const q = pred.clamp(EPS, 1 - EPS);
    return y.mul(q.log()).add(y.rsub(1).mul(q.rsub(1).log())).mean().neg();
  },
  meanSquaredError: (y, { pred }) => pred.sub(y).square().mean(),
  meanAbsoluteError: (y, { pred }) => pred.sub(y).abs().mean(),
  huber: (y, { pred }) => {
    const a = pred.sub(y).abs();
    const small = a.clamp(0, 1);
    // 0.5 * min(|d|, 1)^2 + (|d| - min(|d|, 1)): Huber with delta 1 without a branch.
    return small.square().mul(0.5).add(a.sub(small)).mean();
  },
} satisfies Record<string, LossFn>;

type LossKey = keyof typeof LOSSES;

const LOSS_ALIASES = {
  categorical_crossentropy: 'categoricalCrossentropy',
  sparse_categorical_crossentropy: 'sparseCategoricalCrossentropy',
  binary_crossentropy: 'binaryCrossentropy',
  mean_squared_error: 'meanSquaredError',
  mse: 'meanSquaredError',
  mean_absolute_error: 'meanAbsoluteError',
  mae: 'meanAbsoluteError',
} as const satisfies Record<string, LossKey>;

/** Loss names compile() takes, in TensorFlow.js spelling (`meanSquaredError`) or Keras's (`mean_squared_error`, `mse`). */
export type LossName = LossKey | keyof typeof LOSS_ALIASES;

/** Metric names compile() takes; `accuracy` picks binary, categorical or sparse accuracy from the loss, as Keras does. */
export type MetricName = 'accuracy' | 'acc' | 'meanSquaredError' | 'meanAbsoluteError' | 'mean_squared_error' | 'mean_absolute_error' | 'mse' | 'mae';

/** Canonical loss name for either spelling; throws listing the valid names. */
export function lossName(name: string): LossKey {
  const key = (LOSS_ALIASES as Record<string, LossKey>)[name] ?? name;
  if (!(key in LOSSES)) {
    const valid = [...Object.keys(LOSS_ALIASES), ...Object.keys(LOSSES)].join(', ');
    throw new Error(`unknown loss '${name}'; valid: ${valid}, or a function (yTrue, yPred) => Tensor`);
  }
  return key;
}

export type MetricFn = (yTrue: Tensor, p: Prediction) => Tensor;

/** Keras picks the accuracy flavour from the loss. */
function accuracyFor(loss: string | null, outputUnits: number): MetricFn {
  const binary = (y: Tensor, { pred }: Prediction) => pred.gt(0.5).eq(y).mean();
  // Argmax, compare and mean as one kernel where the scores are [N, C] (from a softmax layer's logits when it has them).
  const classes = (p: Prediction, target: Tensor) => {
    const logits = softmaxLogits(p);
    const floatClasses = target.ndim === 1;
    if (logits) return record('classAccuracy', [logits, target], { softmax: true, floatClasses });
    return p.pred.ndim === 2 ? record('classAccuracy', [p.pred, target], { softmax: false, floatClasses }) : null;
  };
  const sparse = (y: Tensor, p: Prediction) => (labels(y).ndim === 1 && classes(p, labels(y))) || p.pred.argmax(-1).eq(classIndices(y)).mean();
  const categorical = (y: Tensor, p: Prediction) =>
    (p.pred.ndim === 2 && sameShape(y.shape, p.pred.shape) && classes(p, y.float())) || p.pred.argmax(-1).eq(y.argmax(-1)).mean();
  if (loss === 'binaryCrossentropy') return binary;
  if (loss === 'sparseCategoricalCrossentropy') return sparse;
  if (loss === 'categoricalCrossentropy') return categorical;
  return outputUnits === 1 ? binary : categorical;
}

export function metricFn(name: string, loss: string | null, outputUnits: number): MetricFn {
  if (name === 'accuracy' || name === 'acc') return accuracyFor(loss, outputUnits);
  const key = (LOSS_ALIASES as Record<string, LossKey>)[name] ?? name;
  if (key === 'meanSquaredError' || key === 'meanAbsoluteError') return LOSSES[key];
  throw new Error(`unknown metric '${name}'; valid: accuracy, acc, mse, mae, mean_squared_error, mean_absolute_error`);
}

/** Metrics never carry gradients. */
export const evalMetric = (fn: MetricFn, y: Tensor, p: Prediction) => noGrad(() => fn(y, p));
