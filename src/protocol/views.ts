import type { ChallengeMetrics, Estimate, KnockoutReport } from './evaluation';
import type { HeadRef, HeadsFile } from './heads';
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

/** Which of heads.json's two follow-ups ends the prompt: the challenge, or the counterfactual. */
export type FollowUp = 'challenge' | 'counterfactual';

/** A head's attention on one item's prompt, as the Head Map asks for it. */
export interface AttentionQuery extends HeadRef {
  item: string;
  followUp: FollowUp;
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
  /** the item and follow-up of the attention pattern shown */
  attention?: Pick<AttentionQuery, 'item' | 'followUp'>;
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
  /** challenge metrics over the run; null when the file has no challenged item */
  metrics: ChallengeMetrics | null;
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

export interface Comparison {
  data: string;
  base: ComparedModel;
  tuned: ComparedModel;
  phrasings: PhrasingFlipRates[];
  kl: KlShift;
  items: ItemDiff[];
}

export type CompareToView = { type: 'show'; comparison: Comparison };

export type CompareFromView = Ready | { type: 'export'; format: 'json' | 'csv' };

export interface CompareState {
  data: string;
  base: ComparedModel;
  tuned: ComparedModel;
  kl: KlShift;
}
