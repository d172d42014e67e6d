// Reverse-mode autodiff over the tape the engine records: every op output
// that requires grad holds a Node naming its op and inputs; backward walks
// them in reverse topological order and applies each op's own backward rule.

import { fmt, sameShape } from '../lib/shape.js';
import { f, x } from './backend/kernel.js';
import type { Ctx } from './ctx.js';
import { OPS } from './ops/index.js';
import type { WT } from './tensor.js';

function topoOrder(root: WT): WT[] {
  const order: WT[] = [];
  const seen = new Set<WT>();
  // Iterative DFS: graphs of long recurrent unrolls are deep.
  const stack: [WT, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse();
}

/**
 * Computes d(root)/d(leaf) for every leaf reached and hands each to `deliver`,
 * then frees the graph, as PyTorch does without retain_graph.
 */
export function backward(ctx: Ctx, root: WT, seed: WT | null, deliver: (leaf: WT, grad: WT) => void, checkGrad?: (op: string, output: WT, input: number, grad: WT) => void) {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad and has no grad_fn');
  if (!seed && root.size !== 1) throw new Error(`backward: grad can be implicitly created only for scalar outputs, got shape ${fmt(root.shape)}`);
  if (seed && !sameShape(seed.shape, root.shape)) throw new Error(`backward: gradient shape ${fmt(seed.shape)} does not match output shape ${fmt(root.shape)}`);
  const order = topoOrder(root);
  for (const t of order) {
    if (t.node?.freed) throw new Error('backward: trying to backward through the graph a second time (its saved tensors were freed by the first backward)');
  }
  ctx.scoped(() => {
    const grads = new Map<WT, WT>([[root, seed ?? ctx.full(root.shape, 1)]]);
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        deliver(t, g);
        continue;
      }
      const { op, inputs, attrs } = t.node;
      const gi = OPS[op].backward!(ctx, g, inputs, t, attrs);
      inputs.forEach((input, i) => {
        const gin = gi[i];
        if (!gin || !input.requiresGrad) return;
        checkGrad?.(op, t, i, gin);
        const prev = grads.get(input);
        grads.set(input, prev ? ctx.map(f('add', x(0), x(1)), [prev, gin], input.shape) : gin);
      });
    }
  });
  for (const t of order) t.freeGraph();
}
