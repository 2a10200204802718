import type { LocateMetric } from '../../../src/protocol/heads';

/**
 * The localisation metric from the two target tokens' logits at the last position. log p(a) - log p(b) equals
 * logit(a) - logit(b) (the softmax normaliser cancels). The paper's logit(a) / (logit(a) + logit(b)) is kept
 * for comparability; it has no meaning when the logits' sum is near zero or they differ in sign.
 */
export function metricValue(metric: LocateMetric, a: number, b: number): number {
  return metric === 'logit_diff' ? a - b : a / (a + b);
}

/** d metric / d (logit a, logit b) */
export function metricGradient(metric: LocateMetric, a: number, b: number): [number, number] {
  if (metric === 'logit_diff') return [1, -1];
  const sum = (a + b) ** 2;
  return [b / sum, -a / sum];
}

export const PAPER_RATIO_NOTE =
  'paper_ratio = logit(a) / (logit(a) + logit(b)) is unstable when the logits are near zero or of opposite signs; prefer logit_diff';

/** The score of a patched run: the metric's change relative to the unpatched reference (floored at 1e-6 in size). */
export function relativeChange(patched: number, reference: number): number {
  return (patched - reference) / Math.max(Math.abs(reference), 1e-6);
}
