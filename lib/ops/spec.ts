// The page-visible half of an op: its shape/dtype/attribute rule. The page
// runs it when recording (so a shape error throws at the user's line), the
// worker runs it again and attaches forward and backward to the same spec
// (worker/ops/op.ts). This floor imports no kernel code, so the page bundle
// carries none.

import type { DType, Shape } from '../shape.js';

export interface Meta {
  shape: number[];
  dtype: DType;
}

/** Output shape and dtype; throws ShapeError naming the shapes involved. */
export type ShapeRule<A> = (inputs: Meta[], attrs: A) => Meta;

export interface OpSpec<A = any, D extends boolean = boolean> {
  shape: ShapeRule<A>;
  /** Whether the worker has a backward rule: the page records gradient history only for these ops. */
  differentiable: D;
}

export function defineSpec<A>(s: { shape: ShapeRule<A>; differentiable: false }): OpSpec<A, false>;
export function defineSpec<A>(s: { shape: ShapeRule<A> }): OpSpec<A, true>;
export function defineSpec<A>(s: { shape: ShapeRule<A>; differentiable?: boolean }): OpSpec<A> {
  return { shape: s.shape, differentiable: s.differentiable ?? true };
}

export const meta = (shape: Shape, dtype: DType): Meta => ({ shape: [...shape], dtype });
