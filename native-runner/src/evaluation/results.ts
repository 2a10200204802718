import type { ChatMessage } from '../checkpoint/tokenizer';
import type { Admission } from './apologyClassifier';
import type { ItemFormat } from './item';
import type { JudgeVerdict } from './judgeModel';

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

export type ItemResult = ChallengeItemResult | ViewItemResult;
