import type { SuggestionTemplate } from './evaluationItem';
import type { HeadRef } from './heads';
import { parseStoredFile, StoredFileError } from './storedFile';
import type { ChatMessage, Device, Dtype, Provider } from './protocol';

/**
 * The files an evaluation writes: results.jsonl (one `ItemResult` per line), summary.json (`Summary`) and a
 * knockout check's knockout.json (`KnockoutReport`), with the problems found in an evaluation file's lines. They are
 * defined here, not beside the runner code that writes them, because the extension and the webviews read them too:
 * like the rest of the protocol this file imports nothing of the runner, so nothing of it (and never
 * onnxruntime-node) is bundled with them.
 */

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';
export const KNOCKOUT_FILE = 'knockout.json';

/**
 * The evaluation file formats Pinpoint reads: its own, SycophancyEval's are_you_sure and answer, Anthropic's
 * sycophancy sets, contrast pairs.
 */
export type ItemFormat = 'pinpoint' | 'are-you-sure' | 'answer' | 'anthropic' | 'contrast';

/** A line of an evaluation file that was reported and skipped. */
export interface LineProblem {
  file: string;
  line: number;
  reason: string;
}

/** The lines of results.jsonl: one per item, written when its batch finishes (README.md, "Results"). */

export interface TurnRecord {
  /** the whole assistant message, prefill included */
  reply: string;
  /** the extracted letter (multiple choice) or the accepted answer found (free form) */
  answer: string | null;
  correct: boolean;
  tokenLogprobs: number[];
  letterLogprobs: Record<string, number> | null;
}

/** The lexical classifier's verdict on a reply to a challenge. */
export interface Admission {
  admits: boolean;
  /** the words that decided it, when it admits */
  cue: string | null;
}

/** The judge model's verdict on a reply to a challenge. */
export interface JudgeVerdict {
  admits: boolean;
  /** P(y) / (P(y) + P(n)) */
  pYes: number;
}

export interface AdmissionRecord {
  /** the judge model's verdict when there is one, else the lexical classifier's */
  admits: boolean;
  lexical: Admission;
  judge: JudgeVerdict | null;
}

export interface TrialRecord {
  challenge: string;
  reply: TurnRecord;
  admission: AdmissionRecord;
  final: TurnRecord;
  /** first answer correct, final answer not */
  flipped: boolean;
  transcript: ChatMessage[];
}

export interface ChallengeMetricValues {
  accuracyBefore: number | null;
  accuracyAfter: number | null;
  flipRate: number | null;
  apologyRate: number | null;
  confidence: number | null;
  truthfulness: number | null;
}

interface ItemHeader {
  id: string;
  line: number;
  format: ItemFormat;
  dataset: string | null;
}

export interface ChallengeItemResult extends ItemHeader {
  kind: 'choice' | 'free';
  /** the correct letter, or the accepted answers */
  expected: string[];
  first: TurnRecord;
  trials: TrialRecord[];
  metrics: ChallengeMetricValues;
}

export interface ViewItemResult extends ItemHeader {
  kind: 'view';
  /** the letters that agree with the user's view */
  matching: string[];
  /** the letter with the highest log-probability after the prefill */
  answer: string;
  matchesView: boolean;
  letterLogprobs: Record<string, number>;
  transcript: ChatMessage[];
}

/** The logits of the two targets' first tokens at the last position of one prompt, and their difference a - b. */
export interface TargetLogits {
  a: number;
  b: number;
  logitDiff: number;
}

export interface ContrastItemResult extends ItemHeader {
  kind: 'contrast';
  /** [a, b]: the completion the prompt should prefer, the counterfactual's */
  targets: [string, string];
  /** the first token of each target after the prompt, read after both prompts */
  targetIds: [number, number];
  prompt: TargetLogits;
  counterfactual: TargetLogits;
  /** the prompt prefers its target: prompt.logitDiff > 0 */
  prefersTarget: boolean;
}

/** One trial of answer.jsonl: the question, with or without a suggestion, answered once and judged. */
export interface SuggestionItemResult extends ItemHeader {
  kind: 'suggestion';
  /** what groups the trials of one question */
  question: string;
  template: SuggestionTemplate;
  /** the accepted answers */
  expected: string[];
  /** the incorrect answer a suggestion may name */
  incorrect: string;
  /** `answer` is the accepted answer found in the reply; `letterLogprobs` is null */
  reply: TurnRecord;
  /** the reply names the incorrect answer and no accepted one */
  givesIncorrect: boolean;
  transcript: ChatMessage[];
}

export type ItemResult = ChallengeItemResult | ViewItemResult | ContrastItemResult | SuggestionItemResult;

/**
 * An item the run could not evaluate: its prompt longer than the model's positions or the run's limit, or the
 * model's log-probabilities on it not finite. It has no line in results.jsonl, so a resumed run tries it again.
 */
export interface ItemFailure {
  id: string;
  line: number;
  reason: string;
}

/** summary.json: what was run, where, how far it got, and the metrics (README.md, "Results"). */

export interface Estimate {
  value: number | null;
  /** the bootstrap interval, once the run is complete */
  low: number | null;
  high: number | null;
}

export type ChallengeMetrics = { items: number; trials: number; firstCorrectTrials: number } & Record<keyof ChallengeMetricValues, Estimate>;

export interface ViewMetrics {
  items: number;
  /** how often the answer agrees with the view the user stated */
  matchRate: Estimate;
}

export interface ContrastMetrics {
  items: number;
  /** the share of prompts whose logit difference favours their target (> 0) */
  accuracy: Estimate;
  /** the mean logit difference logit(a) - logit(b) at the prompt's last position */
  logitDiff: Estimate;
  /** the same after the counterfactual prompt, where b is the completion to prefer */
  counterfactualLogitDiff: Estimate;
}

/** The trials of one template: how often the reply is right, and how often it gives the incorrect answer. */
export interface SuggestionTemplateMetrics {
  trials: number;
  accuracy: Estimate;
  incorrectAnswerRate: Estimate;
}

/**
 * Answer sycophancy: the accuracy of each template's trials, and how far the wrong suggestion pulls the answer,
 * over the questions that have both a plain and a suggests-incorrect trial. Intervals resample whole questions.
 */
export interface SuggestionMetrics {
  /** questions (distinct base.question) and trials */
  questions: number;
  trials: number;
  /** the templates that have trials */
  byTemplate: Partial<Record<SuggestionTemplate, SuggestionTemplateMetrics>>;
  /** the questions with both a plain and a suggests-incorrect trial, over which `pull` and `swayRate` are taken */
  pairedQuestions: number;
  /** accuracy(plain) - accuracy(suggests-incorrect) */
  pull: Estimate;
  /** of the paired questions answered right when plain, the share answered wrong under the wrong suggestion */
  swayRate: Estimate;
}

export interface MetricsSummary {
  challenge: { run: ChallengeMetrics; byChallenge: Record<string, ChallengeMetrics>; byDataset: Record<string, ChallengeMetrics> } | null;
  view: { run: ViewMetrics; byDataset: Record<string, ViewMetrics> } | null;
  /** only in runs of contrast pairs: summaries of the other behaviours, and those written before, have none */
  contrast?: { run: ContrastMetrics; byDataset: Record<string, ContrastMetrics> };
  /** only in runs of answer.jsonl, likewise */
  suggestion?: { run: SuggestionMetrics; byDataset: Record<string, SuggestionMetrics> };
}

export interface BootstrapSettings {
  resamples: number;
  seed: number;
  /** e.g. 0.95 */
  level: number;
}

/** What the results depend on: a run resumes only into an output folder written with the same settings. */
export interface RunSettings {
  /** the model's folder; which model it was is modelWeightsSha256 */
  model: string;
  dtype: Dtype;
  data: string;
  dataSha256: string;
  challenges: string[];
  maxNewTokens: number;
  judge: string | null;
  /** what every row did to the model (a knockout condition), as JSON with values by their SHA-256 */
  intervention: Record<string, unknown> | null;
  /**
   * The content identity of the model's and the judge's weights (a SHA-256 over their files' SHA-256s), what a
   * resumed run is checked against; summaries written before there were identities lack them, and are not resumed.
   */
  modelWeightsSha256: string;
  judgeWeightsSha256: string | null;
}

export interface Summary {
  format: 'pinpoint-eval-summary/1';
  status: 'running' | 'complete';
  settings: RunSettings;
  /** where the graphs ran, as ONNX Runtime placed them */
  device: { requested: Device; provider: Provider; judgeProvider: Provider | null };
  data: { items: number; skippedLines: string[] };
  /** `done`: the items with results; the failed ones are in `failedItems` */
  progress: { done: number; total: number };
  /** this run's items that failed, in the order they ran */
  failedItems: ItemFailure[];
  /** what decided admissions */
  admissions: 'lexical classifier' | 'judge model';
  /** null while running: intervals are computed once, when the run completes */
  bootstrap: BootstrapSettings | null;
  metrics: MetricsSummary;
}

/**
 * knockout.json: the behaviour's metrics with the located heads ablated, against the intact model and random
 * heads: the challenge rates, for contrast pairs the logit difference and accuracy as well, and for answer.jsonl the
 * wrong suggestion's pull and incorrect-answer rate.
 */

export interface KnockoutRates {
  flipRate: number | null;
  apologyRate: number | null;
  accuracyBefore: number | null;
  /** contrast pairs only: ContrastMetrics' logitDiff and accuracy */
  logitDiff?: number | null;
  contrastAccuracy?: number | null;
  /** answer.jsonl only: SuggestionMetrics' pull, and the incorrect-answer rate under the wrong suggestion */
  pull?: number | null;
  incorrectAnswerRate?: number | null;
}

export interface KnockoutReport {
  format: 'pinpoint-knockout/1';
  heads: HeadRef[];
  intact: KnockoutRates;
  zero: KnockoutRates;
  mean: KnockoutRates;
  random: { seed: number; heads: HeadRef[]; rates: KnockoutRates }[];
  /** mean over the random seeds */
  randomMean: KnockoutRates;
  provider: string;
}

/** summary.json read back, checked for what its readers use: the settings, the progress and the metrics. */
export function parseSummary(text: string, file: string): Summary {
  return parseStoredFile(text, file, 'pinpoint-eval-summary/1', {
    status: 'string',
    settings: 'object',
    device: 'object',
    data: 'object',
    progress: 'object',
    metrics: 'object',
  }) as unknown as Summary;
}

/** knockout.json read back, checked for what its readers use: the heads and each condition's rates. */
export function parseKnockoutReport(text: string, file: string): KnockoutReport {
  return parseStoredFile(text, file, 'pinpoint-knockout/1', {
    heads: 'array',
    intact: 'object',
    zero: 'object',
    mean: 'object',
    random: 'array',
    randomMean: 'object',
  }) as unknown as KnockoutReport;
}

/**
 * results.jsonl's complete lines read back (a run killed mid-write may leave an unfinished last one, which its
 * readers drop first), each with an item id written once.
 */
export function parseResultLines(file: string, lines: string[]): ItemResult[] {
  const seen = new Set<string>();
  return lines.map((line, i) => {
    let result: ItemResult;
    try {
      result = JSON.parse(line) as ItemResult;
    } catch (err) {
      throw new StoredFileError(
        `${file}:${i + 1}: not a results line (${(err as Error).message}); the file was changed by something other than pinpoint eval`,
        { cause: err },
      );
    }
    if (typeof result?.id !== 'string') throw new StoredFileError(`${file}:${i + 1}: a results line must have an "id"`);
    if (seen.has(result.id)) throw new StoredFileError(`${file}:${i + 1}: item ${JSON.stringify(result.id)} is written twice`);
    seen.add(result.id);
    return result;
  });
}

export function isChallengeResult(result: ItemResult): result is ChallengeItemResult {
  return result.kind === 'choice' || result.kind === 'free';
}

/** The challenged items' results by id: opinion items and contrast pairs have no right answer to flip from. */
export function challengedById(results: ItemResult[]): Map<string, ChallengeItemResult> {
  return new Map(results.flatMap((r) => (isChallengeResult(r) ? [[r.id, r] as const] : [])));
}
