import fs from 'node:fs';
import path from 'node:path';
import {
  COMPARISON_CSV_FILE,
  COMPARISON_FILE,
  csvCell,
  type ComparedSide,
  type ComparisonReport,
  type Regression,
  type RegressionMetric,
  type TrialChange,
  type TrialStatus,
} from '../../../src/protocol/comparison';
import {
  challengedById,
  type ChallengeItemResult,
  type ChallengeMetrics,
  type ContrastMetrics,
  type Estimate,
  type MetricsSummary,
  type Summary,
  type SuggestionMetrics,
  type TrialRecord,
} from '../../../src/protocol/evaluation';
import type { CompareResult, EvaluateResult } from '../../../src/protocol/jobs';
import { CHALLENGE_STATISTICS } from '../evaluation/metrics';
import { storedResults } from '../evaluation/resultStore';
import { writeFileAtomic } from '../model/weightFile';
import type { ComparisonJob } from './compareJob';

/**
 * comparison.json and comparison.csv from a finished comparison. The metrics are the evaluations' summaries as
 * written, intervals included; only the trial changes are read anew, from the two results.jsonl.
 */

export function comparisonReport(job: ComparisonJob, result: CompareResult): ComparisonReport {
  return {
    format: 'pinpoint-comparison/1',
    data: job.data,
    challenges: job.challenges,
    base: comparedSide(job.base.dir, result.base),
    tuned: comparedSide(job.tuned.dir, result.tuned),
    kl: { mean: result.klShift, prompts: result.prompts },
    changes: trialChanges(challengedById(storedResults(result.base.out)), challengedById(storedResults(result.tuned.out))),
    regressions: regressions(result.base.summary, result.tuned.summary),
  };
}

/** Writes both files into `dir` (each to a temporary file first, then renamed); answers comparison.json's path. */
export function writeComparison(dir: string, report: ComparisonReport): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, COMPARISON_FILE);
  writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(path.join(dir, COMPARISON_CSV_FILE), comparisonCsv(report));
  return file;
}

function comparedSide(model: string, evaluation: EvaluateResult): ComparedSide {
  return { model, out: evaluation.out, provider: evaluation.summary.device.provider, metrics: evaluation.summary.metrics };
}

/** The folder's results, as the run that just wrote them left them. */
function trialChanges(base: Map<string, ChallengeItemResult>, tuned: Map<string, ChallengeItemResult>): TrialChange[] {
  const inFileOrder = [...base.values()].sort((a, b) => a.line - b.line);
  return inFileOrder.flatMap((item) => {
    const other = tuned.get(item.id);
    return item.trials.flatMap((trial) => {
      const otherTrial = other?.trials.find((t) => t.challenge === trial.challenge);
      // both runs are complete runs of the same items and phrasings, so a missing counterpart has nothing to differ from
      if (!other || !otherTrial) return [];
      const change = {
        id: item.id,
        line: item.line,
        challenge: trial.challenge,
        base: trialStatus(item, trial),
        tuned: trialStatus(other, otherTrial),
      };
      return JSON.stringify(change.base) === JSON.stringify(change.tuned) ? [] : [change];
    });
  });
}

function trialStatus(item: ChallengeItemResult, trial: TrialRecord): TrialStatus {
  return { firstCorrect: item.first.correct, finalCorrect: trial.final.correct, flipped: trial.flipped };
}

const WORSE: Record<RegressionMetric, (base: number, tuned: number) => boolean> = {
  accuracyBefore: (base, tuned) => tuned < base,
  flipRate: (base, tuned) => tuned > base,
};

/** A metric undefined on either side (e.g. no first answer right, so no flip rate) cannot be compared, so it is not one. */
export function regressions(base: Summary, tuned: Summary): Regression[] {
  return (Object.keys(WORSE) as RegressionMetric[]).flatMap((metric) => {
    const b = base.metrics.challenge?.run[metric].value ?? null;
    const t = tuned.metrics.challenge?.run[metric].value ?? null;
    return b !== null && t !== null && WORSE[metric](b, t) ? [{ metric, base: b, tuned: t }] : [];
  });
}

interface MetricRow {
  scope: 'run' | 'challenge' | 'dataset';
  /** the phrasing or the dataset; empty for the run */
  name: string;
  metric: string;
  estimate: Estimate;
}

const CSV_HEADER = ['scope', 'name', 'metric', 'base', 'base_low', 'base_high', 'tuned', 'tuned_low', 'tuned_high'];

/** One row per metric and scope present on either side, the two sides' estimates next to each other. */
function comparisonCsv(report: ComparisonReport): string {
  const key = (row: MetricRow) => JSON.stringify([row.scope, row.name, row.metric]);
  const base = new Map(metricRows(report.base.metrics).map((row) => [key(row), row]));
  const tuned = new Map(metricRows(report.tuned.metrics).map((row) => [key(row), row]));
  const keys = [...new Set([...base.keys(), ...tuned.keys()])];
  const rows = keys.map((k) => {
    const { scope, name, metric } = (base.get(k) ?? tuned.get(k))!;
    return [scope, name, metric, ...estimateCells(base.get(k)?.estimate), ...estimateCells(tuned.get(k)?.estimate)];
  });
  return [CSV_HEADER, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

function metricRows({ challenge, view, contrast, suggestion }: MetricsSummary): MetricRow[] {
  const grouped = (scope: MetricRow['scope'], groups: Record<string, ChallengeMetrics>) =>
    Object.entries(groups).flatMap(([name, m]) => challengeRows(scope, name, m));
  return [
    ...(challenge
      ? [...challengeRows('run', '', challenge.run), ...grouped('challenge', challenge.byChallenge), ...grouped('dataset', challenge.byDataset)]
      : []),
    ...(view
      ? [
          { scope: 'run' as const, name: '', metric: 'matchRate', estimate: view.run.matchRate },
          ...Object.entries(view.byDataset).map(([name, m]) => ({ scope: 'dataset' as const, name, metric: 'matchRate', estimate: m.matchRate })),
        ]
      : []),
    ...(contrast
      ? [...contrastRows('run', '', contrast.run), ...Object.entries(contrast.byDataset).flatMap(([name, m]) => contrastRows('dataset', name, m))]
      : []),
    ...(suggestion
      ? [
          ...suggestionRows('run', '', suggestion.run),
          ...Object.entries(suggestion.byDataset).flatMap(([name, m]) => suggestionRows('dataset', name, m)),
        ]
      : []),
  ];
}

/** The pull and sway rate, then each template's accuracy and incorrect-answer rate, e.g. "accuracy:plain". */
function suggestionRows(scope: MetricRow['scope'], name: string, metrics: SuggestionMetrics): MetricRow[] {
  return [
    { scope, name, metric: 'pull', estimate: metrics.pull },
    { scope, name, metric: 'swayRate', estimate: metrics.swayRate },
    ...Object.entries(metrics.byTemplate).flatMap(([template, m]) => [
      { scope, name, metric: `accuracy:${template}`, estimate: m.accuracy },
      { scope, name, metric: `incorrectAnswerRate:${template}`, estimate: m.incorrectAnswerRate },
    ]),
  ];
}

const CONTRAST_METRICS = ['accuracy', 'logitDiff', 'counterfactualLogitDiff'] as const satisfies readonly (keyof ContrastMetrics)[];

function contrastRows(scope: MetricRow['scope'], name: string, metrics: ContrastMetrics): MetricRow[] {
  return CONTRAST_METRICS.map((metric) => ({ scope, name, metric, estimate: metrics[metric] }));
}

function challengeRows(scope: MetricRow['scope'], name: string, metrics: ChallengeMetrics): MetricRow[] {
  return (Object.keys(CHALLENGE_STATISTICS) as Array<keyof typeof CHALLENGE_STATISTICS>).map((metric) => ({
    scope,
    name,
    metric,
    estimate: metrics[metric],
  }));
}

function estimateCells(estimate: Estimate | undefined): string[] {
  return [estimate?.value, estimate?.low, estimate?.high].map((x) => (x === null || x === undefined ? '' : String(x)));
}
