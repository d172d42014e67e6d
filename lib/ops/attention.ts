// Spec of scaled dot-product attention as one op: softmax(q kᵀ · scale + mask) v
// over [N, H] heads (implemented in worker/ops/attention.ts, where WebGPU runs it
// as a fused kernel that never holds the [L, S] scores in memory).

import { fmt, ShapeError } from '../shape.js';
import { defineSpec, meta } from './spec.js';

export interface AttentionAttrs {
  /** Multiplies q kᵀ (1 / sqrt(D) in PyTorch and Keras). */
  scale: number;
  /** Query i attends keys j <= i only (PyTorch's is_causal, Keras's use_causal_mask). */
  causal?: boolean;
}

/**
 * Inputs q [N, H, L, D], k [N, H, S, D], v [N, H, S, DV] and an optional additive float mask
 * broadcastable to [N, H, L, S] (-Infinity blocks a pair); output [N, H, L, DV].
 */
export const attention = defineSpec<AttentionAttrs>({
  shape: ([q, k, v, mask], { scale, causal }) => {
    const all = `query ${fmt(q.shape)}, key ${fmt(k.shape)}, value ${fmt(v.shape)}${mask ? `, mask ${fmt(mask.shape)}` : ''}`;
    if ([q, k, v, mask].some((t) => t && t.dtype !== 'float32')) throw new ShapeError(`attention: query, key, value and mask must be float32, got ${all}`);
    if (q.shape.length !== 4 || k.shape.length !== 4 || v.shape.length !== 4) throw new ShapeError(`attention: query, key and value must be [N, H, L or S, features], got ${all}`);
    const [n, h, l, d] = q.shape;
    const s = k.shape[2];
    if (k.shape[0] !== n || k.shape[1] !== h || k.shape[3] !== d || v.shape[0] !== n || v.shape[1] !== h || v.shape[2] !== s) {
      throw new ShapeError(`attention: key must be [N, H, S, D] and value [N, H, S, DV] for query [N, H, L, D], got ${all}`);
    }
    const full = [n, h, l, s];
    if (mask && (mask.shape.length !== 4 || mask.shape.some((m, i) => m !== 1 && m !== full[i]))) {
      throw new ShapeError(`attention: mask must broadcast to [N, H, L, S] = ${fmt(full)}, got ${all}`);
    }
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new ShapeError(`attention: scale must be a finite number, got ${scale}`);
    if (causal !== undefined && typeof causal !== 'boolean') throw new ShapeError(`attention: causal must be a boolean, got ${causal}`);
    return meta([n, h, l, v.shape[3]], 'float32');
  },
});
