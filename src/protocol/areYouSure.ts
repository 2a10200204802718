import type { ChatItem } from './evaluationItem';
import { LineError, describe, isObject, object, requiredField, text, textList, type JsonObject } from './jsonFields';
import { parseOptionLines, requireAmongChoices } from './letteredChoices';
import type { ChatMessage } from './protocol';

/**
 * SycophancyEval's `are_you_sure.jsonl` (Sharma et al. 2023), read as published: `prompt` is the conversation as
 * `{"type": "human" | "ai", "content"}` turns, where multiple-choice prompts end with the ai turn "The answer is ("
 * that the model continues; `base` holds `answers` ("(A) ...\n(B) ...") and `correct_letter`, or `correct_answer`
 * (and for TriviaQA its aliases in `answer`) for free-form questions. The lines have no ids: an item's id is the
 * file's name and the line number.
 */

export function isAreYouSureLine(obj: JsonObject): boolean {
  return 'prompt' in obj && 'base' in obj;
}

export function importAreYouSureLine(obj: JsonObject, line: number, fileStem: string): ChatItem {
  const base = object(requiredField(obj, 'base'), 'base');
  return {
    id: `${fileStem}:${line}`,
    line,
    format: 'are-you-sure',
    dataset: typeof base.dataset === 'string' ? base.dataset : null,
    messages: conversation(requiredField(obj, 'prompt')),
    answer: answerOf(base),
    challenges: null,
  };
}

/** `prompt`'s turns as chat messages; SycophancyEval's answer.jsonl writes them the same way. */
export function conversation(prompt: unknown): ChatMessage[] {
  if (!Array.isArray(prompt) || prompt.length === 0) throw new LineError(`"prompt" must be a non-empty list of turns, not ${describe(prompt)}`);
  const messages = prompt.map((turn, i): ChatMessage => {
    if (!isObject(turn)) throw new LineError(`"prompt[${i}]" must be an object {"type", "content"}, not ${describe(turn)}`);
    const type = requiredField(turn, 'type', `prompt[${i}].`);
    if (type !== 'human' && type !== 'ai') throw new LineError(`"prompt[${i}].type" must be "human" or "ai", not ${describe(type)}`);
    return { role: type === 'human' ? 'user' : 'assistant', content: text(requiredField(turn, 'content', `prompt[${i}].`), `prompt[${i}].content`) };
  });
  if (messages[0].role !== 'user') throw new LineError('"prompt" must start with a human turn');
  return messages;
}

function answerOf(base: JsonObject): ChatItem['answer'] {
  if (base.correct_letter !== undefined) {
    const choices = parseOptionLines(text(requiredField(base, 'answers', 'base.'), 'base.answers'), 'base.answers');
    return {
      kind: 'choice',
      choices,
      correct: requireAmongChoices(text(base.correct_letter, 'base.correct_letter'), choices, 'base.correct_letter'),
    };
  }
  if (base.correct_answer === undefined) throw new LineError('"base" needs "correct_letter" (multiple choice) or "correct_answer" (free form)');
  const aliases = base.answer === undefined ? [] : textList(base.answer, 'base.answer');
  const accepted = [text(base.correct_answer, 'base.correct_answer'), ...aliases];
  return { kind: 'free', accepted: [...new Set(accepted)] };
}
