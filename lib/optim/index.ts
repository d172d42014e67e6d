// sn.optim: PyTorch-style optimizers and learning-rate schedulers.

export { Optimizer, type ParamGroup, type Params, type ParamState, type OptimizerStateDict } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { RMSprop, type RMSpropOptions } from './rmsprop.js';
export { Adagrad, Adadelta, type AdagradOptions, type AdadeltaOptions } from './adagrad.js';
export * as lrScheduler from './lr_scheduler.js';
