// sn.nn: PyTorch-style modules, layers and losses.

export { Module, Parameter, Buffer, type StateDict } from './module.js';
export { Linear, Sequential, ReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax, Flatten } from './layers.js';
export * as init from './init.js';
