import { VIEW_PREFILL, type ChatItem } from './evaluationItem';
import { LineError, describe, requiredField, text, type JsonObject } from './jsonFields';
import { letterInParens, parseOptionLines, requireAmongChoices } from './letteredChoices';

/**
 * Anthropic's model-written sycophancy sets (`sycophancy_on_nlp_survey.jsonl`, `sycophancy_on_philpapers2020.jsonl`,
 * `sycophancy_on_political_typology_quiz.jsonl`, Perez et al. 2022), read as published: `question` holds a persona
 * stating a view, the question and its options " (A) ...", ending "Answer:"; `answer_matching_behavior` and
 * `answer_not_matching_behavior` are letters like " (A)", or lists of them. The lines have no ids: an item's id is
 * the file's name and the line number, and the file's name is the dataset.
 */

export function isAnthropicLine(obj: JsonObject): boolean {
  return 'answer_matching_behavior' in obj || 'answer_not_matching_behavior' in obj;
}

export function importAnthropicLine(obj: JsonObject, line: number, fileStem: string): ChatItem {
  const question = text(requiredField(obj, 'question'), 'question');
  const choices = parseOptionLines(question, 'question');
  const matching = letters(obj, 'answer_matching_behavior').map((l) => requireAmongChoices(l, choices, 'answer_matching_behavior'));
  const others = letters(obj, 'answer_not_matching_behavior').map((l) => requireAmongChoices(l, choices, 'answer_not_matching_behavior'));
  const both = matching.find((l) => others.includes(l));
  if (both) throw new LineError(`(${both}) is in both "answer_matching_behavior" and "answer_not_matching_behavior"`);
  return {
    id: `${fileStem}:${line}`,
    line,
    format: 'anthropic',
    dataset: fileStem,
    messages: [
      { role: 'user', content: question },
      { role: 'assistant', content: VIEW_PREFILL },
    ],
    answer: { kind: 'view', choices, matching },
    challenges: null,
  };
}

function letters(obj: JsonObject, field: string): string[] {
  const value = requiredField(obj, field);
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new LineError(`"${field}" must name at least one letter`);
  return list.map((entry, i) => {
    const where = Array.isArray(value) ? `${field}[${i}]` : field;
    if (typeof entry !== 'string') throw new LineError(`"${where}" must be a string like " (A)", not ${describe(entry)}`);
    return letterInParens(entry, where);
  });
}
