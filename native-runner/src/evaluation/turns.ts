import type { ChatMessage, ModelTokenizer } from '../checkpoint/tokenizer';
import type { RowIntervention } from '../interventions/interventions';
import { greedyGenerate } from '../runtime/generate';
import type { Model } from '../runtime/model';
import { answerTokenIds } from './answerTokens';
import { inBatches } from './batching';
import { renderChat, type ChatPrompt } from './chatPrompt';
import { extractLetter, type ExtractedLetter } from './letterExtraction';
import { scoreContinuations, type ContinuationToScore } from './scoring';

/**
 * One assistant turn of many conversations at once: greedy generation batched across them, the replies decoded,
 * their answer letters found, and the log-probabilities of their tokens and of the answer letters read back.
 */

export interface TurnRequest {
  messages: ChatMessage[];
  /** the item's answer letters, for multiple-choice items */
  letters: string[] | null;
}

export interface Turn {
  /** the whole assistant message: the prefill it continued and what the model wrote */
  reply: string;
  letter: ExtractedLetter | null;
  tokenLogprobs: number[];
  letterLogprobs: Record<string, number> | null;
}

export interface GenerationSettings {
  maxNewTokens: number;
  batchSize: number;
  /** what every row does to the model, in generation and in scoring (e.g. knocking heads out) */
  intervention?: RowIntervention;
}

export async function takeTurns(model: Model, requests: TurnRequest[], settings: GenerationSettings): Promise<Turn[]> {
  const prompts = requests.map((r) => renderChat(model.tokenizer, r.messages));
  const continuations = await inBatches(
    prompts.map((p) => p.ids),
    settings.batchSize,
    (ids) => ids.length,
    (batch) => generate(model, batch, settings),
  );
  const drafts = requests.map((request, i) => draftTurn(model.tokenizer, request, prompts[i], continuations[i]));
  const scores = await inBatches(
    drafts.map((d) => d.toScore),
    settings.batchSize,
    (s) => s.prompt.length + s.continuation.length,
    (batch) => scoreContinuations(model, batch, settings.intervention),
  );
  return drafts.map((draft, i) => ({
    reply: draft.reply,
    letter: draft.letter,
    tokenLogprobs: scores[i].tokenLogprobs,
    letterLogprobs: letterRecord(draft.letters, scores[i].probe),
  }));
}

function generate(model: Model, prompts: number[][], settings: GenerationSettings): Promise<number[][]> {
  return greedyGenerate(model, prompts, { maxNewTokens: settings.maxNewTokens, intervention: settings.intervention });
}

interface Draft {
  reply: string;
  letter: ExtractedLetter | null;
  letters: string[] | null;
  toScore: ContinuationToScore;
}

function draftTurn(tokenizer: ModelTokenizer, request: TurnRequest, prompt: ChatPrompt, continuation: number[]): Draft {
  const reply = (prompt.prefill ?? '') + tokenizer.decode(continuation, { skipSpecialTokens: true });
  const { letters } = request;
  const letter = letters ? extractLetter(reply, letters) : null;
  const probe = letters ? letterProbe(tokenizer, prompt, continuation, letters, letter) : null;
  return { reply, letter, letters, toScore: { prompt: prompt.ids, continuation, probe } };
}

/**
 * Where the letters' log-probabilities are read: right after a prefill ("The answer is ("), the forced choice,
 * whatever the model went on to write; otherwise at the token that writes the extracted letter, when that token
 * is the letter on its own (not merged with the text around it, such as " (B").
 */
function letterProbe(
  tokenizer: ModelTokenizer,
  prompt: ChatPrompt,
  continuation: number[],
  letters: string[],
  letter: ExtractedLetter | null,
): ContinuationToScore['probe'] {
  if (prompt.prefill !== null) return { position: 0, tokens: answerTokenIds(tokenizer, prompt.text, letters) };
  if (!letter) return null;
  const position = tokenIndexAt(tokenizer, continuation, letter.index);
  const tokens = answerTokenIds(tokenizer, prompt.text + tokenizer.decode(continuation.slice(0, position)), letters);
  return tokens[letters.indexOf(letter.letter)] === continuation[position] ? { position, tokens } : null;
}

/** The continuation token whose text covers character `index` of the decoded continuation. */
function tokenIndexAt(tokenizer: ModelTokenizer, continuation: number[], index: number): number {
  let position = 0;
  const decodedLength = (n: number) => tokenizer.decode(continuation.slice(0, n), { skipSpecialTokens: true }).length;
  while (position < continuation.length - 1 && decodedLength(position + 1) <= index) position++;
  return position;
}

function letterRecord(letters: string[] | null, logprobs: number[] | null): Record<string, number> | null {
  if (!letters || !logprobs) return null;
  return Object.fromEntries(letters.map((letter, i) => [letter, logprobs[i]]));
}
