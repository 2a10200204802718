import path from 'node:path';
import { parseArgs } from 'node:util';
import type { LineProblem, SuggestionMetrics, Summary } from '../../../src/protocol/evaluation';
import { SUGGESTION_TEMPLATES } from '../../../src/protocol/evaluationItem';
import { formatEstimate } from './metrics';
import { ON_BAD_LINE, type OnBadLine } from '../../../src/protocol/jobs';
import { Model } from '../runtime/model';
import { DEFAULT_CHALLENGE } from './challengeProtocol';
import { describeProblem, readEvaluationFile } from './evaluationFile';
import { describeFailure } from './itemFailures';
import { RESULTS_FILE, SUMMARY_FILE } from '../../../src/protocol/evaluation';
import { runEvaluation, type Progress } from './runEvaluation';
import type { Device, Dtype } from '../../../src/protocol/protocol';
import { count, device, DEVICE_USAGE, dtype, DTYPE_USAGE, fraction, oneOf, required, UsageError } from '../cliOptions';

/**
 * `pinpoint eval`: runs an evaluation file through a model, writes results.jsonl and summary.json to the output
 * folder (resuming what is there), reports progress on stderr, and exits 0 (done), 1 (error) or 2 (flip rate
 * above --fail-on-flip-rate), so that a CI pipeline can gate on it. Every error, a usage error included, exits 1:
 * 2 means only that the gate failed. A bad line is an error with --on-bad-line stop, and so is a run in which
 * every item failed (an item fails alone, its prompt too long or the model's numbers not finite, and the run goes on).
 * A file of contrast pairs is scored by the logit difference of its targets; it generates nothing, so the
 * challenge options do not apply to it and --fail-on-flip-rate cannot be checked on it. SycophancyEval's
 * answer.jsonl is answered once per line, free form, and reports accuracy per template and the wrong suggestion's
 * pull; it has no challenge either, so the flip-rate gate cannot be checked on it.
 */

export const EVAL_USAGE = `eval --model <dir> --data <file.jsonl> --out <dir>
    ${DEVICE_USAGE} ${DTYPE_USAGE} [--challenge <text>]... [--judge <dir>]
    [--max-items N] [--batch-size N] [--max-new-tokens N] [--max-prompt-tokens N] [--on-bad-line skip|stop]
    [--fail-on-flip-rate X]
    run the "are you sure?" evaluation (or score a file of contrast pairs by their logit difference, or answer
    each line of SycophancyEval's answer.jsonl once, alone and with its suggestion); exit 2 when
    the flip rate is above X; an item whose prompt is longer than N tokens (or than the model's positions) fails,
    and the run goes on`;

const OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  device: { type: 'string', default: 'auto' },
  dtype: { type: 'string', default: 'float32' },
  challenge: { type: 'string', multiple: true },
  judge: { type: 'string' },
  'max-items': { type: 'string' },
  'batch-size': { type: 'string', default: '8' },
  'max-new-tokens': { type: 'string', default: '64' },
  'max-prompt-tokens': { type: 'string' },
  'on-bad-line': { type: 'string', default: 'skip' },
  'fail-on-flip-rate': { type: 'string' },
} as const;

interface EvalOptions {
  model: string;
  data: string;
  out: string;
  device: Device;
  dtype: Dtype;
  challenges: string[];
  judge: string | null;
  maxItems: number | null;
  batchSize: number;
  maxNewTokens: number;
  maxPromptTokens: number | undefined;
  onBadLine: OnBadLine;
  failOnFlipRate: number | null;
}

export async function evalCommand(args: string[]): Promise<number> {
  try {
    return await evaluate(parseOptions(args));
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`pinpoint eval: ${(err as Error).message}\n${usage ? `\nusage: pinpoint ${EVAL_USAGE}\n` : ''}`);
    return 1;
  }
}

function parseOptions(args: string[]): EvalOptions {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true });
  return {
    model: required(values.model, '--model'),
    data: required(values.data, '--data'),
    out: required(values.out, '--out'),
    device: device(values.device),
    dtype: dtype(values.dtype),
    challenges: values.challenge ?? [DEFAULT_CHALLENGE],
    judge: values.judge ?? null,
    maxItems: values['max-items'] === undefined ? null : count(values['max-items'], '--max-items'),
    batchSize: count(values['batch-size'], '--batch-size'),
    maxNewTokens: count(values['max-new-tokens'], '--max-new-tokens'),
    maxPromptTokens: values['max-prompt-tokens'] === undefined ? undefined : count(values['max-prompt-tokens'], '--max-prompt-tokens'),
    onBadLine: oneOf(values['on-bad-line'], ON_BAD_LINE, '--on-bad-line'),
    failOnFlipRate: values['fail-on-flip-rate'] === undefined ? null : fraction(values['fail-on-flip-rate'], '--fail-on-flip-rate'),
  };
}

async function evaluate(options: EvalOptions): Promise<number> {
  const data = readEvaluationFile(options.data);
  if (options.onBadLine === 'stop' && data.problems.length > 0) throw badLines(data.problems);
  for (const problem of data.problems) process.stderr.write(`${describeProblem(problem)} (line skipped)\n`);
  if (data.items.length === 0) throw new Error(`${options.data} has no item that can be run`);
  const items = options.maxItems === null ? data.items : data.items.slice(0, options.maxItems);
  const model = Model.load(options.model, { device: options.device, dtype: options.dtype });
  const judge =
    options.judge === null ? null : { model: Model.load(options.judge, { device: options.device, dtype: options.dtype }), dir: options.judge };
  try {
    say(
      `${items.length} items from ${options.data}${data.problems.length ? ` (${data.problems.length} lines skipped)` : ''}, model ${options.model}, batch size ${options.batchSize}`,
    );
    const summary = await runEvaluation({
      model,
      modelDir: options.model,
      judge,
      data,
      items,
      outDir: options.out,
      challenges: options.challenges,
      maxNewTokens: options.maxNewTokens,
      batchSize: options.batchSize,
      maxPromptTokens: options.maxPromptTokens,
      onProgress: reportProgress,
    });
    for (const failure of summary.failedItems) say(describeFailure(options.data, failure));
    reportSummary(summary, options.out);
    if (summary.progress.done === 0 && summary.failedItems.length > 0) {
      say(`no item could be evaluated: all ${summary.failedItems.length} failed`);
      return 1;
    }
    return gate(summary, options.failOnFlipRate);
  } finally {
    await model.dispose();
    await judge?.model.dispose();
  }
}

function badLines(problems: LineProblem[]): Error {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more bad lines)` : '';
  return new Error(`${describeProblem(problems[0])}${more}; with --on-bad-line stop a bad line fails the evaluation`);
}

/** 2 when the run's flip rate is above the threshold; a gate with no flip rate to read is an error. */
export function gate(summary: Summary, threshold: number | null): number {
  if (threshold === null) return 0;
  const flipRate = summary.metrics.challenge?.run.flipRate.value ?? null;
  if (flipRate === null) {
    say(`--fail-on-flip-rate cannot be checked: no challenged item was answered correctly at first, so the flip rate is undefined`);
    return 1;
  }
  if (flipRate <= threshold) return 0;
  say(`flip rate ${flipRate.toFixed(3)} is above ${threshold}`);
  return 2;
}

function reportProgress(progress: Progress): void {
  const left = (progress.total - progress.done) / progress.itemsPerSecond;
  const resumed = progress.resumed ? `, ${progress.resumed} from an earlier run` : '';
  say(`${progress.done}/${progress.total} items${resumed}, ${progress.itemsPerSecond.toFixed(2)} items/s, about ${Math.ceil(left)} s left`);
}

function reportSummary(summary: Summary, out: string): void {
  const { challenge, view } = summary.metrics;
  say(`ran on ${summary.device.provider}; results in ${path.join(out, RESULTS_FILE)}, summary in ${path.join(out, SUMMARY_FILE)}`);
  if (challenge) {
    const m = challenge.run;
    say(
      `accuracy ${formatEstimate(m.accuracyBefore)} before the challenge, ${formatEstimate(m.accuracyAfter)} after; flip rate ${formatEstimate(m.flipRate)}, ` +
        `apology rate ${formatEstimate(m.apologyRate)} (of ${m.firstCorrectTrials} first-correct); truthfulness ${formatEstimate(m.truthfulness)}`,
    );
  }
  if (view) say(`answers matching the user's view: ${formatEstimate(view.run.matchRate)} of ${view.run.items} items`);
  const contrast = summary.metrics.contrast?.run;
  if (contrast) {
    say(
      `contrast pairs: accuracy ${formatEstimate(contrast.accuracy)} of ${contrast.items} prompts; logit difference ${formatEstimate(contrast.logitDiff)} ` +
        `after the prompt, ${formatEstimate(contrast.counterfactualLogitDiff)} after the counterfactual`,
    );
  }
  const suggestion = summary.metrics.suggestion?.run;
  if (suggestion) reportSuggestion(suggestion);
}

function reportSuggestion(m: SuggestionMetrics): void {
  say(`answer sycophancy: ${m.trials} trials of ${m.questions} questions`);
  for (const template of SUGGESTION_TEMPLATES) {
    const t = m.byTemplate[template];
    if (t)
      say(
        `  ${template}: accuracy ${formatEstimate(t.accuracy)}, gives the incorrect answer ${formatEstimate(t.incorrectAnswerRate)} (${t.trials} trials)`,
      );
  }
  say(
    `  the wrong suggestion's pull (accuracy plain - suggests-incorrect) ${formatEstimate(m.pull)}; ` +
      `right when plain, wrong under it: ${formatEstimate(m.swayRate)} (${m.pairedQuestions} questions with both)`,
  );
}

function say(line: string): void {
  process.stderr.write(`pinpoint eval: ${line}\n`);
}
