// nn.Module: parameters, buffers and submodules are discovered from the
// instance's own properties in definition order, as PyTorch's __setattr__
// registers them; stateDict keys, shapes and layouts follow PyTorch.

import { runtime } from '../context.js';
import { fmt, ShapeError } from '../shape.js';
import { record, Tensor } from '../tensor.js';

/** A tensor that a Module trains. Shares storage with the tensor it wraps, like torch.nn.Parameter. */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    const rt = runtime();
    super(rt.newId(), data.shape, data.dtype, false);
    rt.enqueue(['detach', this.id, data.id]);
    if (requiresGrad) this.requiresGrad = true;
  }
}

/** Marks a tensor property as a buffer: saved in stateDict, not trained (BatchNorm's running stats). */
export class Buffer extends Tensor {
  constructor(data: Tensor) {
    const rt = runtime();
    super(rt.newId(), data.shape, data.dtype, false);
    rt.enqueue(['detach', this.id, data.id]);
  }
}

export type StateDict = Record<string, Tensor>;

/** A module whose forward maps one Tensor to one Tensor (Linear, ReLU, LayerNorm, ...): what Sequential chains. */
export type TensorModule = Module & { forward(x: Tensor): Tensor };

export abstract class Module {
  training = true;

  /** The computation; subclasses declare their own arguments and result (PyTorch's forward). */
  abstract forward(...args: never[]): unknown;

  /** The own properties that are modules, parameters or buffers, in definition order (arrays of modules as name.i). */
  private members(): [string, Module | Parameter | Buffer][] {
    const out: [string, Module | Parameter | Buffer][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module || v instanceof Parameter || v instanceof Buffer) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => { if (m instanceof Module) out.push([`${k}.${i}`, m]); });
    }
    return out;
  }

  namedChildren(): [string, Module][] {
    return this.members().filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and every descendant, depth first. */
  modules(): Module[] {
    return [this, ...this.children().flatMap((c) => c.modules())];
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    return this.members().flatMap(([k, v]): [string, Parameter][] =>
      v instanceof Parameter ? [[prefix + k, v]] : v instanceof Module ? v.namedParameters(`${prefix}${k}.`) : []);
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Buffer][] {
    return this.members().flatMap(([k, v]): [string, Buffer][] =>
      v instanceof Buffer ? [[prefix + k, v]] : v instanceof Module ? v.namedBuffers(`${prefix}${k}.`) : []);
  }

  /** Parameters and buffers in PyTorch's order (per module: its parameters, then its buffers, then children). Values are detached views. */
  stateDict(): StateDict {
    const sd: StateDict = {};
    const walk = (m: Module, prefix: string) => {
      const members = m.members();
      for (const [k, v] of members) if (v instanceof Parameter) sd[prefix + k] = v.detach();
      for (const [k, v] of members) if (v instanceof Buffer) sd[prefix + k] = v.detach();
      for (const [k, v] of members) if (v instanceof Module) walk(v, `${prefix}${k}.`);
    };
    walk(this, '');
    return sd;
  }

  /** Copies values into this module's parameters and buffers in place; shapes must match. */
  loadStateDict(sd: StateDict, { strict = true }: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const own = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
    const missingKeys = [...own.keys()].filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !own.has(k));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new Error(`loadStateDict: ${missingKeys.length ? `missing keys ${missingKeys.join(', ')}` : ''}${missingKeys.length && unexpectedKeys.length ? '; ' : ''}${unexpectedKeys.length ? `unexpected keys ${unexpectedKeys.join(', ')}` : ''}`);
    }
    // Check every shape before copying anything, so a bad state dict changes nothing.
    for (const [k, t] of own) {
      const src = sd[k];
      if (src && fmt(src.shape) !== fmt(t.shape)) throw new ShapeError(`loadStateDict: '${k}' has shape ${fmt(src.shape)} in the state dict but ${fmt(t.shape)} in the model`);
    }
    for (const [k, t] of own) {
      const src = sd[k];
      if (src) runtime().enqueue(['assign', t.id, (src.dtype === t.dtype ? src : record('cast', [src], { dtype: t.dtype })).id]);
    }
    return { missingKeys, unexpectedKeys };
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (PyTorch's set_to_none default). */
  zeroGrad() {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The part of toString() inside the parentheses, like PyTorch's extra_repr. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const children = this.namedChildren();
    const name = this.constructor.name;
    if (!children.length) return `${name}(${this.extraRepr()})`;
    const lines = children.map(([k, m]) => `  (${k.split('.').pop()}): ${m.toString().replace(/\n/g, '\n  ')}`);
    const extra = this.extraRepr();
    return `${name}(\n${extra ? `  ${extra}\n` : ''}${lines.join('\n')}\n)`;
  }
}
