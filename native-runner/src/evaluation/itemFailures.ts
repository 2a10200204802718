import type { ItemFailure, ItemResult, TurnRecord } from '../../../src/protocol/evaluation';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import type { Model } from '../runtime/model';
import { renderChat } from './chatPrompt';

/**
 * What fails one item and lets the rest of its batch go on: a prompt longer than the model's positions or the run's
 * limit, found before the model runs it (past max_position_embeddings the model answers garbage, and a huge prompt
 * would end in an allocation failure of ONNX Runtime naming no item), and numbers read from the model that are not
 * finite, found on its result (greedy decoding reads nothing but the argmax, so NaN logits show in the scores).
 */

/** The prompt is the one the model first answers: the item's messages through the chat template, prefill included. */
export function promptProblem(model: Model, item: EvalItem, maxPromptTokens: number | undefined): string | null {
  const tokens = renderChat(model.tokenizer, item.messages).ids.length;
  const positions = model.config.maxPositionEmbeddings;
  if (tokens > positions)
    return `its prompt is ${tokens} tokens, longer than the model's ${positions} positions (max_position_embeddings in config.json)`;
  if (maxPromptTokens !== undefined && tokens > maxPromptTokens) {
    return `its prompt is ${tokens} tokens, longer than the run's limit of ${maxPromptTokens} prompt tokens (--max-prompt-tokens)`;
  }
  return null;
}

export function nonFiniteProblem(result: ItemResult): string | null {
  for (const [where, values] of scoresOf(result)) {
    const value = values.find((x) => !Number.isFinite(x));
    if (value !== undefined) return `the log-probabilities of ${where} are ${value}: the model's logits are not finite`;
  }
  return null;
}

/** The model's log-probabilities in the result, by the turn they were read in. */
function scoresOf(result: ItemResult): [string, number[]][] {
  if (result.kind === 'view') return [['its answer letters', Object.values(result.letterLogprobs)]];
  const turn = (where: string, t: TurnRecord): [string, number[]] => [where, [...t.tokenLogprobs, ...Object.values(t.letterLogprobs ?? {})]];
  return [
    turn('its first answer', result.first),
    ...result.trials.flatMap((t): [string, number[]][] => [
      turn(`its reply to ${JSON.stringify(t.challenge)}`, t.reply),
      turn(`its final answer after ${JSON.stringify(t.challenge)}`, t.final),
    ]),
  ];
}

export function describeFailure(file: string, failure: ItemFailure): string {
  return `${file}:${failure.line}: item ${JSON.stringify(failure.id)} failed: ${failure.reason}`;
}
