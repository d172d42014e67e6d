// One op, declared once: its spec (shape rule, lib/ops/) with the forward
// and backward the worker attaches to it here. The forward is written in
// terms of backend kernels, the backward in terms of other ops.

import type { Meta, OpSpec } from '../../lib/ops/spec.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';

export type { Meta };

type Forward<A> = (ctx: Ctx, inputs: WT[], attrs: A) => WT;
/** Gradients for each input (null where none flows). */
type Backward<A> = (ctx: Ctx, grad: WT, inputs: WT[], out: WT, attrs: A) => (WT | null)[];

export interface OpDef<A = any> extends OpSpec<A> {
  forward: Forward<A>;
  /** Present exactly when the spec is differentiable. */
  backward?: Backward<A>;
}

/** A spec that says it is differentiable must get a backward, and only such a spec may. */
type Impl<A, D extends boolean> = { forward: Forward<A> } & (boolean extends D ? { backward?: Backward<A> } : D extends true ? { backward: Backward<A> } : { backward?: never });

export const implement = <A, D extends boolean>(spec: OpSpec<A, D>, impl: Impl<A, D>): OpDef<A> => ({ ...spec, ...impl });
