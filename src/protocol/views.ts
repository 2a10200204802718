import type { Estimate, KnockoutReport, MetricsSummary } from './evaluation';
import type { HeadRef, HeadsFile, PairSide } from './heads';
import type { AttentionResult, TuneStep } from './jobs';

/**
 * Messages between the extension and its webviews, and the state each webview keeps (`setState`) to be restored
 * after a reload. Every webview says `ready` once its script runs; only then is it sent what to show.
 */

export interface Ready {
  type: 'ready';
}

// ---- Head Map ----

export interface HeadMapData {
  /** heads.json */
  file: string;
  heads: HeadsFile;
  selected: HeadRef[];
  /** the knockout check of heads of this file */
  knockout?: KnockoutReport;
  /** the evaluation file the heads were located on, when this workspace ran it (attention patterns need its items) */
  data?: string;
}

/** A head's attention on one of an item's two localisation prompts, as the Head Map asks for it. */
export interface AttentionQuery extends HeadRef {
  item: string;
  side: PairSide;
}

export type HeadMapToView =
  | { type: 'show'; data: HeadMapData }
  | { type: 'attention'; query: AttentionQuery; result: AttentionResult }
  | { type: 'attentionFailed'; query: AttentionQuery; message: string };

export type HeadMapFromView =
  | Ready
  | { type: 'select'; heads: HeadRef[] }
  | { type: 'tune'; heads: HeadRef[] }
  | { type: 'knockout'; heads: HeadRef[] }
  | { type: 'attention'; query: AttentionQuery };

export interface HeadMapState {
  file: string;
  selected: HeadRef[];
  /** the head whose per-item effects and attention are shown */
  focus?: HeadRef;
  /** the item and prompt of the attention pattern shown */
  attention?: Pick<AttentionQuery, 'item' | 'side'>;
}

// ---- Tuning ----

export type TuningStatus = 'running' | 'done' | 'stopped' | 'failed';

export interface TuningData {
  /** the run's folder */
  run: string;
  model: string;
  heads: HeadRef[];
  steps: number;
  points: TuneStep[];
  status: TuningStatus;
  message?: string;
  /** the newest checkpoint written */
  checkpoint?: string;
}

export type TuningToView =
  | { type: 'show'; data: TuningData }
  | { type: 'step'; step: TuneStep }
  | { type: 'status'; status: TuningStatus; message?: string; checkpoint?: string };

export type TuningFromView = Ready | { type: 'stop' } | { type: 'resume' } | { type: 'compare' } | { type: 'export' };

export type TuningState = TuningData;

/** Adds a step to a run's curve; a resumed run repeats the steps after its newest checkpoint, which replace the old. */
export function appendStep(points: TuneStep[], step: TuneStep): void {
  while (points.length > 0 && points[points.length - 1].step >= step.step) points.pop();
  points.push(step);
}

// ---- Compare ----

export interface ComparedModel {
  label: string;
  model: string;
  /** the evaluation's output folder */
  out: string;
  /** the summary's metrics: each behaviour's section, for the behaviours the file's items have */
  metrics: MetricsSummary;
}

export interface PhrasingFlipRates {
  challenge: string;
  base: Estimate;
  tuned: Estimate;
}

export interface KlShift {
  /** mean over every position of the items' first prompts of KL(base || tuned) of the next token, in nats */
  mean: number;
  prompts: number;
}

export interface TrialOutcome {
  challenge: string;
  answer: string | null;
  correct: boolean;
  flipped: boolean;
  transcript: { role: string; content: string }[];
}

export interface ItemOutcome {
  first: string | null;
  firstCorrect: boolean;
  trials: TrialOutcome[];
}

export interface ItemDiff {
  id: string;
  /** the item's line in the evaluation file */
  line: number;
  expected: string[];
  base: ItemOutcome | null;
  tuned: ItemOutcome | null;
  /** whether any answer differs between the two models */
  changed: boolean;
}

/** One model's logit differences on a contrast pair. */
export interface PairOutcome {
  prompt: number;
  counterfactual: number;
  prefersTarget: boolean;
}

/** A contrast pair under both models: the tuned model's logit differences against the base's. */
export interface PairDiff {
  id: string;
  line: number;
  targets: [string, string];
  base: PairOutcome | null;
  tuned: PairOutcome | null;
  /** whether the prompt's preferred target differs between the two models */
  changed: boolean;
}

export interface Comparison {
  data: string;
  base: ComparedModel;
  tuned: ComparedModel;
  phrasings: PhrasingFlipRates[];
  kl: KlShift;
  /** the challenged questions, item by item */
  items: ItemDiff[];
  /** the contrast pairs, pair by pair */
  pairs: PairDiff[];
}

export type CompareToView = { type: 'show'; comparison: Comparison };

export type CompareFromView = Ready | { type: 'export'; format: 'json' | 'csv' };

export interface CompareState {
  data: string;
  base: ComparedModel;
  tuned: ComparedModel;
  kl: KlShift;
}
