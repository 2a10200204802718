import type { BootstrapSettings } from '../../../src/protocol/evaluation';
import { uniformSampler } from '../seededRandom';
/**
 * Percentile bootstrap intervals: the statistic recomputed on resamples of the units (items) drawn with
 * replacement from a seeded generator, so that a summary is the same on every machine and every rerun.
 */

export const DEFAULT_BOOTSTRAP: BootstrapSettings = { resamples: 1000, seed: 1, level: 0.95 };

/** [low, high], or null when the statistic is undefined on every resample (e.g. no item was first correct). */
export function bootstrapInterval<T>(units: T[], statistic: (sample: T[]) => number | null, settings: BootstrapSettings): [number, number] | null {
  if (units.length === 0) return null;
  const uniform = uniformSampler(settings.seed);
  const values: number[] = [];
  for (let r = 0; r < settings.resamples; r++) {
    const value = statistic(Array.from(units, () => units[Math.floor(uniform() * units.length)]));
    if (value !== null) values.push(value);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const tail = (1 - settings.level) / 2;
  return [quantile(values, tail), quantile(values, 1 - tail)];
}

/** Linear interpolation between order statistics, numpy's default. */
export function quantile(sorted: number[], q: number): number {
  const at = q * (sorted.length - 1);
  const below = Math.floor(at);
  const above = Math.ceil(at);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - below);
}
