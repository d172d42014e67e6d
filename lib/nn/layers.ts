// Feed-forward layers: each is its parameters (constructor), its math
// (forward) and a one-line description (extraRepr).

import type { Tensor } from '../tensor.js';
import { gelu, linear } from './functional.js';
import { kaimingUniformDefault } from './init.js';
import { Module, Parameter, type TensorModule } from './module.js';
import { integer } from '../validate.js';
import { pyArgs, type PyRest } from './args.js';

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, ...rest: PyRest<[bias: boolean], { bias?: boolean }>) {
    super();
    integer(inFeatures, 'Linear: inFeatures', 0);
    integer(outFeatures, 'Linear: outFeatures', 0);
    const { bias = true } = pyArgs<{ bias?: boolean }>('Linear', rest, { bias: 'boolean' });
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
  constructor(...modules: TensorModule[]) {
    super();
    const bad = modules.findIndex((m) => !(m instanceof Module));
    if (bad >= 0) throw new TypeError(`Sequential: argument ${bad + 1} is not a Module (got ${typeof modules[bad]})`);
    modules.forEach((m, i) => ((this as any)[i] = m));
  }

  get length() {
    return this.children().length;
  }

  at(i: number): Module {
    return this.children().at(i)!;
  }

  forward(x: Tensor): Tensor {
    // The constructor took TensorModules, so every child is one.
    return this.children().reduce((h, m) => (m as TensorModule).forward(h), x);
  }
}

/** inplace is accepted for PyTorch code; the result is the same tensor values either way. */
export class ReLU extends Module {
  readonly inplace: boolean;
  constructor(...rest: PyRest<[inplace: boolean], { inplace?: boolean }>) {
    super();
    ({ inplace: this.inplace = false } = pyArgs<{ inplace?: boolean }>('ReLU', rest, { inplace: 'boolean' }));
  }
  forward(x: Tensor) { return x.relu(); }
  override extraRepr() { return this.inplace ? 'inplace=True' : ''; }
}
export class Sigmoid extends Module {
  constructor(...rest: []) { super(); pyArgs('Sigmoid', rest, {}); }
  forward(x: Tensor) { return x.sigmoid(); }
}
export class Tanh extends Module {
  constructor(...rest: []) { super(); pyArgs('Tanh', rest, {}); }
  forward(x: Tensor) { return x.tanh(); }
}
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(...rest: PyRest<[approximate: 'none' | 'tanh'], { approximate?: 'none' | 'tanh' }>) {
    super();
    const { approximate = 'none' } = pyArgs<{ approximate?: 'none' | 'tanh' }>('GELU', rest, { approximate: 'string' });
    if (approximate !== 'none' && approximate !== 'tanh') throw new RangeError(`GELU: approximate must be 'none' or 'tanh', got '${approximate}'`);
    this.approximate = approximate;
  }
  forward(x: Tensor) { return gelu(x, { approximate: this.approximate }); }
  override extraRepr() { return `approximate='${this.approximate}'`; }
}
export class Softmax extends Module {
  readonly dim: number;
  constructor(...rest: PyRest<[dim: number], { dim?: number }>) {
    super();
    this.dim = pyArgs<{ dim?: number }>('Softmax', rest, { dim: 'int' }).dim ?? missingDim('Softmax');
  }
  forward(x: Tensor) { return x.softmax(this.dim); }
  override extraRepr() { return `dim=${this.dim}`; }
}
export class LogSoftmax extends Module {
  readonly dim: number;
  constructor(...rest: PyRest<[dim: number], { dim?: number }>) {
    super();
    this.dim = pyArgs<{ dim?: number }>('LogSoftmax', rest, { dim: 'int' }).dim ?? missingDim('LogSoftmax');
  }
  forward(x: Tensor) { return x.logSoftmax(this.dim); }
  override extraRepr() { return `dim=${this.dim}`; }
}
export class Flatten extends Module {
  constructor(...rest: PyRest<[startDim: number, endDim: number], { startDim?: number; endDim?: number }>) {
    super();
    const { startDim = 1, endDim = -1 } = pyArgs<{ startDim?: number; endDim?: number }>('Flatten', rest, { startDim: 'int', endDim: 'int' });
    this.startDim = startDim;
    this.endDim = endDim;
  }
  readonly startDim: number;
  readonly endDim: number;
  forward(x: Tensor) { return x.flatten(this.startDim, this.endDim); }
  override extraRepr() { return `start_dim=${this.startDim}, end_dim=${this.endDim}`; }
}

/** PyTorch's implicit dim choice is deprecated and depends on the input's rank; we ask for it. */
function missingDim(name: string): never {
  throw new TypeError(`${name}: pass dim (e.g. new sn.nn.${name}(1) or { dim: 1 }); the implicit choice is deprecated in PyTorch`);
}
