// Feed-forward layers: each is its parameters (constructor), its math
// (forward) and a one-line description (extraRepr).

import type { Tensor } from '../tensor.js';
import { gelu, linear } from './functional.js';
import { kaimingUniformDefault } from './init.js';
import { Module, Parameter } from './module.js';
import { integer } from '../validate.js';

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true }: { bias?: boolean } = {}) {
    super();
    integer(inFeatures, 'Linear: inFeatures', 0);
    integer(outFeatures, 'Linear: outFeatures', 0);
    this.weight = new Parameter(kaimingUniformDefault([outFeatures, inFeatures], inFeatures));
    this.bias = bias ? new Parameter(kaimingUniformDefault([outFeatures], inFeatures)) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr() {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

/** Runs its modules in order; accepts modules as arguments, indexed '0', '1', ... like PyTorch. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => ((this as any)[i] = m));
  }

  get length() {
    return this.children().length;
  }

  at(i: number): Module {
    return this.children().at(i)!;
  }

  forward(x: any): any {
    return this.children().reduce((h, m) => m.forward(h), x);
  }
}

export class ReLU extends Module {
  forward(x: Tensor) { return x.relu(); }
}
export class Sigmoid extends Module {
  forward(x: Tensor) { return x.sigmoid(); }
}
export class Tanh extends Module {
  forward(x: Tensor) { return x.tanh(); }
}
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor({ approximate = 'none' }: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = approximate;
  }
  forward(x: Tensor) { return gelu(x, { approximate: this.approximate }); }
  override extraRepr() { return `approximate='${this.approximate}'`; }
}
export class Softmax extends Module {
  constructor(readonly dim: number) { super(); }
  forward(x: Tensor) { return x.softmax(this.dim); }
  override extraRepr() { return `dim=${this.dim}`; }
}
export class LogSoftmax extends Module {
  constructor(readonly dim: number) { super(); }
  forward(x: Tensor) { return x.logSoftmax(this.dim); }
  override extraRepr() { return `dim=${this.dim}`; }
}
export class Flatten extends Module {
  constructor({ startDim = 1, endDim = -1 }: { startDim?: number; endDim?: number } = {}) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }
  readonly startDim: number;
  readonly endDim: number;
  forward(x: Tensor) { return x.flatten(this.startDim, this.endDim); }
  override extraRepr() { return `start_dim=${this.startDim}, end_dim=${this.endDim}`; }
}
