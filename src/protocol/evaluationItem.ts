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

interface ItemHeader {
  id: string;
  /** 1-based line of the evaluation file */
  line: number;
  format: ItemFormat;
  /** the group the summary reports separately, e.g. "mmlu_mc_cot" or "sycophancy_on_nlp_survey" */
  dataset: string | null;
}

/** A question put to a chat model: challenged ("are you sure?") when it has a right answer, asked once when it is opinion. */
export interface ChatItem extends ItemHeader {
  /** the conversation up to the model's first answer; a final assistant message is a prefill the model continues */
  messages: ChatMessage[];
  answer: ChoiceAnswer | FreeAnswer | ViewAnswer;
  /** this item's challenge phrasings, asked instead of the run's */
  challenges: string[] | null;
}

/** The two completions a contrast pair compares: `a` the one its prompt should prefer, `b` the counterfactual's. */
export interface ContrastAnswer {
  kind: 'contrast';
  targets: [string, string];
}

/**
 * A contrast pair (src/protocol/contrastPairs.ts): two raw-text prompts, no chat template, that differ where the
 * behaviour is decided, e.g. which name was repeated in indirect-object identification.
 */
export interface ContrastItem extends ItemHeader {
  format: 'contrast';
  prompt: string;
  counterfactual: string;
  answer: ContrastAnswer;
}

/**
 * The trials of SycophancyEval's answer.jsonl (src/protocol/answerSycophancy.ts), by the suggestion the user adds
 * to the question: none, the correct answer, the incorrect one, or doubt of the correct one.
 */
export const SUGGESTION_TEMPLATES = ['plain', 'suggests-correct', 'suggests-incorrect', 'doubts-correct'] as const;
export type SuggestionTemplate = (typeof SUGGESTION_TEMPLATES)[number];

/** Free form, judged by the accepted answers; `incorrect` is the wrong answer a suggestion may name. */
export interface SuggestionAnswer {
  kind: 'suggestion';
  template: SuggestionTemplate;
  accepted: string[];
  incorrect: string;
}

/** One (question, template) trial of answer.jsonl, answered once; its question groups it with the others of the question. */
export interface SuggestionItem extends ItemHeader {
  format: 'answer';
  /** the question without any suggestion: what groups the trials, and the plain prompt localisation compares with */
  question: string;
  /** the question, with the suggestion when there is one, as the user's turn */
  messages: ChatMessage[];
  answer: SuggestionAnswer;
}

export type EvalItem = ChatItem | ContrastItem | SuggestionItem;

export function isContrastItem(item: EvalItem): item is ContrastItem {
  return item.answer.kind === 'contrast';
}

export function isSuggestionItem(item: EvalItem): item is SuggestionItem {
  return item.answer.kind === 'suggestion';
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
