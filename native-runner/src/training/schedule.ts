/**
 * Learning-rate schedules with linear warmup, as transformers' get_*_schedule_with_warmup define them: the rate
 * for optimizer step `step` (0-based) of `total`.
 */
import type { Schedule as ScheduleKind } from '../../../src/protocol/jobs';

export interface Schedule {
  kind: ScheduleKind;
  warmupSteps: number;
  totalSteps: number;
  /** polynomial: final rate and power */
  endLr?: number;
  power?: number;
}

export function learningRate(peak: number, s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (peak * step) / Math.max(1, s.warmupSteps);
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  switch (s.kind) {
    case 'constant':
      return peak;
    case 'linear':
      return peak * Math.max(0, 1 - progress);
    case 'cosine':
      return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
    case 'polynomial': {
      const end = s.endLr ?? 1e-7;
      if (step > s.totalSteps) return end;
      return (peak - end) * (1 - progress) ** (s.power ?? 1) + end;
    }
  }
}
