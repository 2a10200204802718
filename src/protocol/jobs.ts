import { NotificationType, RequestType } from 'vscode-jsonrpc';
import type { KnockoutReport, Summary } from './evaluation';
import type { HeadRef, HeadsFile, LocateMethod, LocateMetric, PairSide, Positions } from './heads';
import type { Device, Dtype } from './protocol';

/**
 * Long jobs of the runner: evaluation, head localisation, knockout, tuning, the comparison of a base and a tuned
 * model, and export. Each request carries a job id of the client's choosing, which its `job/progress` notifications
 * repeat. Cancelling the request ($/cancelRequest) stops the job at the next item, batch or optimizer step; it then
 * answers `RunnerErrorCode.Cancelled`, and what it finished stays on disk for a later run to resume.
 */

export interface ModelSpec {
  /** a Hugging Face checkpoint folder */
  dir: string;
  device: Device;
  dtype: Dtype;
}

interface JobParams {
  /** chosen by the client; the job's progress notifications carry it */
  job: string;
}

export interface EvaluateParams extends JobParams {
  model: ModelSpec;
  /** the evaluation file (JSON Lines) */
  data: string;
  /** results.jsonl and summary.json go here; a folder holding the same run is resumed, not redone */
  out: string;
  challenges: string[];
  maxNewTokens: number;
  batchSize: number;
  /** the ids of the items to run; all of the file's items when absent */
  items?: string[];
  /** an item whose prompt is longer than this many tokens fails, as one longer than the model's positions does */
  maxPromptTokens?: number;
}

export interface EvaluateResult {
  out: string;
  summary: Summary;
}

export const EvaluateRequest = new RequestType<EvaluateParams, EvaluateResult, void>('job/evaluate');

export interface LocateParams extends JobParams {
  model: ModelSpec;
  data: string;
  /** heads.json goes here */
  out: string;
  /** the ids of the items to localise on; all of the file's items when absent */
  items?: string[];
  method: LocateMethod;
  metric: LocateMetric;
  /** which positions activation patching replaces */
  positions: Positions;
  challenge: string;
  counterfactual: string;
  /** the reply tokens whose logits the metric compares: caving in vs holding firm */
  targets: [string, string];
  /** heads selected for tuning; the runner's default (a few percent of all heads) when absent */
  topK?: number;
}

export interface LocateResult {
  /** the heads.json written */
  file: string;
  heads: HeadsFile;
}

export const LocateRequest = new RequestType<LocateParams, LocateResult, void>('job/locate');

export interface KnockoutParams extends JobParams {
  model: ModelSpec;
  data: string;
  /** knockout.json goes here, and each condition's evaluation in a folder of its own (resumed when run again) */
  out: string;
  /** the heads knocked out (zero- and mean-ablated) */
  heads: HeadRef[];
  /** seeds of the random heads knocked out in their place, as the baseline */
  seeds: number[];
  challenges: string[];
  maxNewTokens: number;
  batchSize: number;
}

export interface KnockoutResult {
  /** the knockout.json written */
  file: string;
  report: KnockoutReport;
}

export const KnockoutRequest = new RequestType<KnockoutParams, KnockoutResult, void>('job/knockout');

export interface CompareParams extends JobParams {
  base: ModelSpec;
  tuned: ModelSpec;
  data: string;
  /** the two evaluations' folders (each resumed when it holds the same run) */
  out: { base: string; tuned: string };
  challenges: string[];
  maxNewTokens: number;
  batchSize: number;
}

export interface CompareResult {
  base: EvaluateResult;
  tuned: EvaluateResult;
  /** mean over every position of the items' first prompts of KL(base || tuned) of the next token, in nats */
  klShift: number;
  prompts: number;
}

/** Both models through the evaluation, and how far the tuned one moved from the base on the items' prompts. */
export const CompareRequest = new RequestType<CompareParams, CompareResult, void>('job/compare');

/**
 * One head's attention pattern on one item's prompt, for the Head Map. It answers in well under a second, so it is
 * a plain request beside the jobs, with no job id or progress.
 */
export interface AttentionParams {
  model: ModelSpec;
  data: string;
  item: string;
  /** questions: what the user says after the model's correct first answer, the challenge or the counterfactual */
  followUp?: string;
  /** contrast pairs: which of the pair's raw prompts, the prompt (reference) or the counterfactual */
  side?: PairSide;
  layer: number;
  head: number;
}

export interface AttentionResult {
  /** the prompt's tokens, each decoded on its own */
  tokens: string[];
  /** the first query position with weights: a long prompt keeps only its last ATTENTION_ROWS rows */
  firstRow: number;
  /** [(T - firstRow) * T] row-major: weights[(q - firstRow) * T + k] is query position q's attention to key k */
  weights: number[];
}

/** The query rows `model/attention` answers at most: the positions nearest the reply, where the answer is read. */
export const ATTENTION_ROWS = 512;

export const AttentionRequest = new RequestType<AttentionParams, AttentionResult, void>('model/attention');

/** Learning-rate schedules, each after a linear warmup (transformers' get_*_schedule_with_warmup). */
export const SCHEDULES = ['constant', 'linear', 'cosine', 'polynomial'] as const;
export type Schedule = (typeof SCHEDULES)[number];

/** What a command does with a bad line of its data file: report it and go on, or stop with it as the error. */
export const ON_BAD_LINE = ['skip', 'stop'] as const;
export type OnBadLine = (typeof ON_BAD_LINE)[number];

/** The loss on the last assistant message of each conversation, or on all of them. */
export const LOSS_ON = ['last', 'all'] as const;
export type LossOn = (typeof LOSS_ON)[number];

export interface TuneHyperparameters {
  steps: number;
  learningRate: number;
  /** examples per micro-batch */
  batchSize: number;
  /** micro-batches per optimizer step */
  gradAccum: number;
  weightDecay: number;
  maxGradNorm: number;
  schedule: Schedule;
  warmupSteps: number;
  seed: number;
  /** a checkpoint every N steps (and at the last) */
  saveEvery: number;
  lossOn: LossOn;
}

export interface TuneParams extends JobParams {
  /** the base model; its dtype is the training graph's (float32 master values of the tuned blocks either way) */
  model: ModelSpec;
  /** training conversations, JSON Lines of {"messages": [...]} */
  data: string;
  /** the run's folder: step-N checkpoints and latest.json */
  out: string;
  heads: HeadRef[];
  /** also tune the k and v rows of each head's KV group */
  includeKeyValue: boolean;
  hyperparameters: TuneHyperparameters;
  /** continue the run in `out` from its newest checkpoint; without it a folder holding a run is refused */
  resume: boolean;
}

export interface TuneResult {
  /** the newest checkpoint: a Hub checkpoint of the tuned model */
  checkpoint: string;
  losses: number[];
  provider: string;
  /** bad lines of the training data, skipped */
  skipped: { file: string; line: number; reason: string }[];
}

export const TuneRequest = new RequestType<TuneParams, TuneResult, void>('job/tune');

export interface ExportParams extends JobParams {
  /** a tuning run's folder */
  run: string;
  /** an empty or missing folder to write the tuned model to */
  to: string;
}

export interface ExportResult {
  /** the checkpoint exported */
  from: string;
  to: string;
  files: string[];
}

export const ExportRequest = new RequestType<ExportParams, ExportResult, void>('job/export');

/** One optimizer step of a tuning job. */
export interface TuneStep {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface JobProgress {
  job: string;
  /** what the job is doing, worded for a progress notification */
  message: string;
  done: number;
  total: number;
  /** tuning jobs: the step just taken */
  tune?: TuneStep;
}

export const JobProgressNotification = new NotificationType<JobProgress>('job/progress');
