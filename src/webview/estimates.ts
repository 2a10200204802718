import type { Estimate } from '../protocol/evaluation';

/** A rate with its bootstrap interval, as the panels print it: 0.625 [0.375, 0.875], or n/a. */
export function formatEstimate(estimate: Estimate | undefined | null): string {
  if (!estimate || estimate.value === null) return 'n/a';
  const interval = estimate.low === null || estimate.high === null ? '' : ` [${estimate.low.toFixed(3)}, ${estimate.high.toFixed(3)}]`;
  return `${estimate.value.toFixed(3)}${interval}`;
}
