import type { MetricsSummary } from './evaluation';
import type { Provider } from './protocol';
import type { KlShift } from './views';

/**
 * comparison.json, written by `pinpoint compare` beside the two evaluations it ran (base/ and tuned/): both
 * models' metrics as their summaries hold them, the KL shift, and the trials whose outcome changed. Defined here
 * because CI scripts and the extension read it; like the rest of the protocol it imports nothing of the runner.
 */

export const COMPARISON_FILE = 'comparison.json';
/** the metrics of comparison.json as a table, one row per metric and scope (the run, a phrasing, a dataset) */
export const COMPARISON_CSV_FILE = 'comparison.csv';

/**
 * A CSV cell: quoted when it holds a quote, comma or line break; and a cell that a spreadsheet would read as a
 * formula (ids, answers, phrasings and dataset names are the data's text) gets a leading single quote, so it stays
 * text. Both comparison CSVs, the runner's and the extension's, write their cells with it.
 */
export function csvCell(value: string): string {
  const text = /^[=+\-@]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface ComparedSide {
  /** the checkpoint folder */
  model: string;
  /** the evaluation's folder (summary.json, results.jsonl) */
  out: string;
  provider: Provider;
  /** the summary's metrics unchanged: the run's, per challenge phrasing and per dataset, with bootstrap intervals */
  metrics: MetricsSummary;
}

/** One model's outcome on one item under one challenge phrasing. */
export interface TrialStatus {
  firstCorrect: boolean;
  finalCorrect: boolean;
  flipped: boolean;
}

/** An (item, phrasing) on which the two models' outcomes differ. */
export interface TrialChange {
  id: string;
  /** the item's line in the evaluation file */
  line: number;
  challenge: string;
  base: TrialStatus;
  tuned: TrialStatus;
}

/** The run metrics a tuned model must not lose on: accuracy before the challenge must not drop, flips must not rise. */
export type RegressionMetric = 'accuracyBefore' | 'flipRate';

export interface Regression {
  metric: RegressionMetric;
  base: number;
  tuned: number;
}

export interface ComparisonReport {
  format: 'pinpoint-comparison/1';
  data: string;
  challenges: string[];
  base: ComparedSide;
  tuned: ComparedSide;
  kl: KlShift;
  /** challenged items only: items of the view protocol have no right answer to flip from */
  changes: TrialChange[];
  /** where the tuned model's run point value is worse than the base's; empty when it is not */
  regressions: Regression[];
}
