import type { ContrastItem } from '../../../src/protocol/evaluationItem';
import type { ModelTokenizer } from '../checkpoint/tokenizer';
import { IGNORE_INDEX, type Example } from './lossBatch';

/**
 * Tuning data derived from a contrast pair: its prompt (raw text, as evaluation reads it) completed with its
 * first target, the one the prompt should prefer, with the loss on the target's tokens only. The counterfactual
 * is not trained on: it is the contrast's control, what evaluation and localisation compare the prompt against.
 */
export function contrastExample(item: ContrastItem, tokenizer: ModelTokenizer): Example {
  const prompt = tokenizer.encode(item.prompt);
  const ids = tokenizer.encode(item.prompt + item.answer.targets[0]);
  // a tokenizer that merges the target into the prompt's last token would train on a prompt evaluation never reads
  if (ids.length <= prompt.length || !prompt.every((id, i) => ids[i] === id)) {
    throw new Error(
      `the tokenizer joins the target ${JSON.stringify(item.answer.targets[0])} to the end of the prompt, so it cannot be learnt as its completion`,
    );
  }
  return { ids, labels: ids.map((id, t) => (t < prompt.length ? IGNORE_INDEX : id)) };
}
