import type * as ort from 'onnxruntime-node';
import { interventionFeeds, type HeadRef } from '../runtime/interventions';
import type { Model } from '../runtime/model';

/**
 * Heads knocked out in every forward pass of an evaluation: their attention output is replaced at every position
 * by zeros, or by the given [L, H, D] values (mean ablation). The knockout experiments rerun the protocol so.
 */
export interface Ablation {
  heads: HeadRef[];
  values?: Float32Array;
}

export function ablationFeeds(model: Model, rows: number, newPositions: number, ablation: Ablation): Record<string, ort.Tensor> {
  const perRow = Array.from({ length: rows }, () => ({ ablate: ablation.heads }));
  return interventionFeeds(model.config, perRow, newPositions, model.dtype, ablation.values);
}
