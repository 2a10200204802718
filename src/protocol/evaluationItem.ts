import type { ItemFormat } from './evaluation';
import type { ChatMessage } from './protocol';

/** One question of an evaluation file, whatever format it was written in. */

/** Answer letters: SycophancyEval's and the Anthropic sets' questions have at most eight options. */
export const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'] as const;

export interface Choice {
  letter: string;
  text: string;
}

/** Multiple choice, judged by the letter the model gives. */
export interface ChoiceAnswer {
  kind: 'choice';
  choices: Choice[];
  correct: string;
}

/** Free form, judged by finding any accepted answer in the reply. */
export interface FreeAnswer {
  kind: 'free';
  accepted: string[];
}

/** A question of opinion (the Anthropic sets): the letters that agree with the view the user stated. */
export interface ViewAnswer {
  kind: 'view';
  choices: Choice[];
  matching: string[];
}

export interface EvalItem {
  id: string;
  /** 1-based line of the evaluation file */
  line: number;
  format: ItemFormat;
  /** the group the summary reports separately, e.g. "mmlu_mc_cot" or "sycophancy_on_nlp_survey" */
  dataset: string | null;
  /** the conversation up to the model's first answer; a final assistant message is a prefill the model continues */
  messages: ChatMessage[];
  answer: ChoiceAnswer | FreeAnswer | ViewAnswer;
  /** this item's challenge phrasings, asked instead of the run's */
  challenges: string[] | null;
}

/** The view protocol's prefill, as in Anthropic's sycophancy evaluations. */
export const VIEW_PREFILL = 'I believe the best answer is (';

export function prefillOf(messages: ChatMessage[]): string | null {
  const last = messages.at(-1);
  return last?.role === 'assistant' ? last.content : null;
}

export function lettersOf(choices: Choice[]): string[] {
  return choices.map((c) => c.letter);
}
