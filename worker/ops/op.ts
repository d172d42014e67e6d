// One op, declared once: its shape rule (run on the page, so shape errors
// throw at the user's line, and again in the worker), its forward in terms
// of backend kernels, and its backward rule in terms of other ops.

import type { DType, Shape } from '../../lib/shape.js';
import type { Ctx } from '../ctx.js';
import type { WT } from '../tensor.js';

export interface Meta {
  shape: number[];
  dtype: DType;
}

export interface OpDef<A = any> {
  /** Output shape and dtype; throws ShapeError naming the shapes involved. */
  shape(inputs: Meta[], attrs: A): Meta;
  forward(ctx: Ctx, inputs: WT[], attrs: A): WT;
  /** Gradients for each input (null where none flows). Absent: the op is not differentiable. */
  backward?(ctx: Ctx, grad: WT, inputs: WT[], out: WT, attrs: A): (WT | null)[];
}

export const defineOp = <A>(def: OpDef<A>): OpDef<A> => def;

export const meta = (shape: Shape, dtype: DType): Meta => ({ shape: [...shape], dtype });
