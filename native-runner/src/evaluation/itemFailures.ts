import type { ItemFailure, ItemResult } from '../../../src/protocol/evaluation';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import type { Model } from '../runtime/model';
import { itemProblem, promptsOf, resultScores } from './behaviours';

/**
 * What fails one item and lets the rest of its batch go on: a prompt longer than the model's positions or the run's
 * limit, or a contrast pair's targets that start with the same token, found before the model runs it (past
 * max_position_embeddings the model answers garbage, and a huge prompt would end in an allocation failure of ONNX
 * Runtime naming no item), and numbers read from the model that are not finite, found on its result (greedy
 * decoding reads nothing but the argmax, so NaN logits show in the scores).
 */

/**
 * The prompts are those the model reads before it answers: a question's messages through the chat template, prefill
 * included; a contrast pair's prompt and counterfactual, the longer of which counts.
 */
export function promptProblem(model: Model, item: EvalItem, maxPromptTokens: number | undefined): string | null {
  const tokens = Math.max(...promptsOf(model.tokenizer, item).map((ids) => ids.length));
  const positions = model.config.maxPositionEmbeddings;
  if (tokens > positions)
    return `its prompt is ${tokens} tokens, longer than the model's ${positions} positions (max_position_embeddings in config.json)`;
  if (maxPromptTokens !== undefined && tokens > maxPromptTokens) {
    return `its prompt is ${tokens} tokens, longer than the run's limit of ${maxPromptTokens} prompt tokens (--max-prompt-tokens)`;
  }
  return itemProblem(model.tokenizer, item);
}

export function nonFiniteProblem(result: ItemResult): string | null {
  for (const [where, values] of resultScores(result)) {
    const value = values.find((x) => !Number.isFinite(x));
    if (value !== undefined) return `the log-probabilities of ${where} are ${value}: the model's logits are not finite`;
  }
  return null;
}

export function describeFailure(file: string, failure: ItemFailure): string {
  return `${file}:${failure.line}: item ${JSON.stringify(failure.id)} failed: ${failure.reason}`;
}
