// sn.nn: PyTorch-style modules, layers and losses.

export { Module, Parameter, Buffer, type StateDict, type TensorModule } from './module.js';
export { Linear, Sequential, ReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax, Flatten } from './layers.js';
export { LSTM, GRU, RNN, type RNNOptions, type RecurrentCallOptions } from './recurrent.js';
export { Conv2d, MaxPool2d } from './conv.js';
export { LayerNorm, BatchNorm1d } from './norm.js';
export { Dropout } from './dropout.js';
export { Embedding } from './embedding.js';
export { MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, generateSquareSubsequentMask, type MultiheadAttentionOptions, type AttentionCallOptions, type TransformerEncoderLayerOptions } from './attention.js';
export { MSELoss, L1Loss, HuberLoss, NLLLoss, CrossEntropyLoss, BCELoss, BCEWithLogitsLoss, type Reduction } from './loss.js';
export * as functional from './functional.js';
export * as init from './init.js';
export * as utils from './utils.js';
