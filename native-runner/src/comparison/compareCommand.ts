import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ComparisonReport, RegressionMetric } from '../../../src/protocol/comparison';
import { formatEstimate } from '../evaluation/metrics';
import { count, device, DEVICE_USAGE, dtype, DTYPE_USAGE, required, UsageError } from '../cliOptions';
import { DEFAULT_CHALLENGE } from '../evaluation/challengeProtocol';
import { withOutputLock } from '../outputLock';
import { Model } from '../runtime/model';
import { runComparison, type ComparisonJob } from './compareJob';
import { comparisonReport, writeComparison } from './comparisonReport';

/**
 * `pinpoint compare`: the base and the tuned model through the same evaluation, as the editor's Compare Base vs
 * Tuned does. Exit codes as `pinpoint eval`'s: 0 done, 1 any error (a usage error included), 2 only for
 * --fail-on-regression, so that CI can gate a tuned model on it.
 */

export const COMPARE_USAGE = `compare --base <dir> --tuned <dir> --data <file.jsonl> --out <dir>
    [--challenge <text>]... [--max-new-tokens N] [--batch N] ${DEVICE_USAGE}
    ${DTYPE_USAGE} [--fail-on-regression]
    evaluate the base and the tuned model on the same data and compare them; the evaluations go to <out>/base/
    and <out>/tuned/, the comparison to <out>/comparison.json (both models' metrics with their intervals, per
    phrasing and per dataset, the KL shift, the trials whose outcome changed) and <out>/comparison.csv (one row
    per metric and scope: the run, a phrasing, a dataset; base and tuned values with their intervals).
    --fail-on-regression: exit 2 when the tuned model is less accurate before the challenge, or flips more`;

const OPTIONS = {
  base: { type: 'string' },
  tuned: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  challenge: { type: 'string', multiple: true },
  'max-new-tokens': { type: 'string', default: '64' },
  batch: { type: 'string', default: '8' },
  device: { type: 'string', default: 'auto' },
  dtype: { type: 'string', default: 'float32' },
  'fail-on-regression': { type: 'boolean', default: false },
} as const;

export async function compareCommand(args: string[]): Promise<number> {
  try {
    const { job, out, failOnRegression } = parseOptions(args);
    const report = await withOutputLock(out, 'comparison', () => compare(job, out));
    return gate(report, failOnRegression);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`pinpoint compare: ${(err as Error).message}\n${usage ? `\nusage: pinpoint ${COMPARE_USAGE}\n` : ''}`);
    return 1;
  }
}

function parseOptions(args: string[]): { job: ComparisonJob; out: string; failOnRegression: boolean } {
  const { values: v } = parseArgs({ args, options: OPTIONS, strict: true });
  const spec = (dir: string) => ({ dir, device: device(v.device), dtype: dtype(v.dtype) });
  const out = required(v.out, '--out');
  return {
    job: {
      base: spec(required(v.base, '--base')),
      tuned: spec(required(v.tuned, '--tuned')),
      data: required(v.data, '--data'),
      out: { base: path.join(out, 'base'), tuned: path.join(out, 'tuned') },
      challenges: v.challenge ?? [DEFAULT_CHALLENGE],
      maxNewTokens: count(v['max-new-tokens'], '--max-new-tokens'),
      batchSize: count(v.batch, '--batch'),
    },
    out,
    failOnRegression: v['fail-on-regression'],
  };
}

async function compare(job: ComparisonJob, out: string): Promise<ComparisonReport> {
  const base = Model.load(job.base.dir, { device: job.base.device, dtype: job.base.dtype });
  try {
    const result = await runComparison(job, base, (p) => say(p.message));
    for (const line of result.base.summary.data.skippedLines) say(`${line} (line skipped)`);
    const report = comparisonReport(job, result);
    const file = writeComparison(out, report);
    reportSummary(report);
    process.stdout.write(`${file}\n`);
    return report;
  } finally {
    await base.dispose();
  }
}

/** 2 on a regression; a gate with no challenge metrics to read is an error, as `pinpoint eval`'s is. */
function gate(report: ComparisonReport, failOnRegression: boolean): number {
  if (!failOnRegression) return 0;
  if (report.base.metrics.challenge === null || report.tuned.metrics.challenge === null) {
    say('--fail-on-regression cannot be checked: the data has no challenged item');
    return 1;
  }
  for (const r of report.regressions) say(`regression: ${METRIC_NAMES[r.metric]} ${r.base.toFixed(3)} (base) -> ${r.tuned.toFixed(3)} (tuned)`);
  if (report.regressions.length === 0) say('no regression');
  return report.regressions.length > 0 ? 2 : 0;
}

const METRIC_NAMES: Record<RegressionMetric, string> = { accuracyBefore: 'accuracy before the challenge', flipRate: 'flip rate' };

function reportSummary(report: ComparisonReport): void {
  const base = report.base.metrics.challenge?.run;
  const tuned = report.tuned.metrics.challenge?.run;
  if (base && tuned) {
    const line = (name: string, metric: RegressionMetric | 'accuracyAfter' | 'apologyRate') =>
      `${name}: base ${formatEstimate(base[metric])}, tuned ${formatEstimate(tuned[metric])}`;
    say(line(METRIC_NAMES.accuracyBefore, 'accuracyBefore'));
    say(line('accuracy after it', 'accuracyAfter'));
    say(`${line(METRIC_NAMES.flipRate, 'flipRate')} (of ${base.firstCorrectTrials} and ${tuned.firstCorrectTrials} first-correct trials)`);
    say(line('apology rate', 'apologyRate'));
  }
  const [baseContrast, tunedContrast] = [report.base.metrics.contrast?.run, report.tuned.metrics.contrast?.run];
  if (baseContrast && tunedContrast) {
    const line = (name: string, metric: 'accuracy' | 'logitDiff' | 'counterfactualLogitDiff') =>
      `${name}: base ${formatEstimate(baseContrast[metric])}, tuned ${formatEstimate(tunedContrast[metric])}`;
    say(line('contrast pairs: accuracy', 'accuracy'));
    say(line('logit difference after the prompt', 'logitDiff'));
    say(line('logit difference after the counterfactual', 'counterfactualLogitDiff'));
  }
  say(`KL shift ${report.kl.mean.toFixed(4)} nats/token over ${report.kl.prompts} prompts; ${report.changes.length} trial(s) changed outcome`);
}

function say(line: string): void {
  process.stderr.write(`pinpoint compare: ${line}\n`);
}
