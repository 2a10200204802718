import { LETTERS, VIEW_PREFILL, prefillOf, type ChatItem, type Choice } from './evaluationItem';
import { normaliseAnswer } from './freeFormMatch';
import { LineError, describe, isObject, rejectUnknownFields, requiredField, text, textList, type JsonObject } from './jsonFields';
import { requireAmongChoices } from './letteredChoices';
import type { ChatMessage } from './protocol';

/** Pinpoint's own line format (README.md, "Evaluation files"; schemas/evaluation.schema.json describes the same fields). */

export const PINPOINT_FIELDS = [
  'id',
  'question',
  'messages',
  'prefill',
  'choices',
  'correct',
  'answers',
  'userView',
  'challenges',
  'dataset',
] as const;

const ROLES = ['system', 'user', 'assistant'];

export function importPinpointLine(obj: JsonObject, line: number): ChatItem {
  rejectUnknownFields(obj, PINPOINT_FIELDS);
  const id = text(requiredField(obj, 'id'), 'id');
  const answer = answerOf(obj);
  const messages = messagesOf(obj);
  if (answer.kind === 'view' && prefillOf(messages) === null) messages.push({ role: 'assistant', content: VIEW_PREFILL });
  return {
    id,
    line,
    format: 'pinpoint',
    dataset: obj.dataset === undefined ? null : text(obj.dataset, 'dataset'),
    messages,
    answer,
    challenges: obj.challenges === undefined ? null : textList(obj.challenges, 'challenges'),
  };
}

function answerOf(obj: JsonObject): ChatItem['answer'] {
  const given = (['correct', 'answers', 'userView'] as const).filter((key) => obj[key] !== undefined);
  if (given.length !== 1) {
    const found = given.length === 0 ? 'none' : given.map((k) => `"${k}"`).join(' and ');
    throw new LineError(`give exactly one of "correct" (multiple choice), "answers" (free form) or "userView" (opinion); found ${found}`);
  }
  if (given[0] === 'answers') {
    if (obj.choices !== undefined) throw new LineError('"choices" go with "correct" or "userView", not with free-form "answers"');
    return { kind: 'free', accepted: acceptedAnswers(obj.answers) };
  }
  const choices = choicesOf(obj);
  if (given[0] === 'correct') return { kind: 'choice', choices, correct: requireAmongChoices(letter(obj.correct, 'correct'), choices, 'correct') };
  const views = Array.isArray(obj.userView) ? obj.userView : [obj.userView];
  if (views.length === 0) throw new LineError('"userView" must name at least one letter');
  return { kind: 'view', choices, matching: views.map((v, i) => requireAmongChoices(letter(v, `userView[${i}]`), choices, 'userView')) };
}

function choicesOf(obj: JsonObject): Choice[] {
  const texts = textList(requiredField(obj, 'choices'), 'choices');
  if (texts.length < 2 || texts.length > LETTERS.length)
    throw new LineError(`"choices" must list 2 to ${LETTERS.length} options, not ${texts.length}`);
  return texts.map((option, i) => ({ letter: LETTERS[i], text: option }));
}

function letter(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Z]$/.test(value))
    throw new LineError(`"${field}" must be a capital letter such as "B", not ${describe(value)}`);
  return value;
}

function acceptedAnswers(value: unknown): string[] {
  const accepted = textList(value, 'answers');
  accepted.forEach((answer, i) => {
    if (normaliseAnswer(answer) === '')
      throw new LineError(`"answers[${i}]" (${JSON.stringify(answer)}) has nothing left to match once punctuation and articles are dropped`);
  });
  return accepted;
}

function messagesOf(obj: JsonObject): ChatMessage[] {
  if ((obj.question === undefined) === (obj.messages === undefined)) throw new LineError('give exactly one of "question" and "messages"');
  if (obj.question !== undefined) {
    const messages: ChatMessage[] = [{ role: 'user', content: text(obj.question, 'question') }];
    if (obj.prefill !== undefined) messages.push({ role: 'assistant', content: text(obj.prefill, 'prefill') });
    return messages;
  }
  if (obj.prefill !== undefined)
    throw new LineError('"prefill" goes with "question"; with "messages", end them with the assistant message to continue');
  if (!Array.isArray(obj.messages) || obj.messages.length === 0)
    throw new LineError(`"messages" must be a non-empty list, not ${describe(obj.messages)}`);
  const messages = obj.messages.map(message);
  if (!messages.some((m) => m.role === 'user')) throw new LineError('"messages" must hold a user message');
  if (messages.at(-1)!.role === 'system') throw new LineError('"messages" must end with a user message, or an assistant message to continue');
  return messages;
}

function message(value: unknown, i: number): ChatMessage {
  const field = `messages[${i}]`;
  if (!isObject(value)) throw new LineError(`"${field}" must be an object {"role", "content"}, not ${describe(value)}`);
  rejectUnknownFields(value, ['role', 'content']);
  const role = requiredField(value, 'role', `${field}.`);
  if (typeof role !== 'string' || !ROLES.includes(role))
    throw new LineError(`"${field}.role" must be one of ${ROLES.join(', ')}, not ${describe(role)}`);
  return { role, content: text(requiredField(value, 'content', `${field}.`), `${field}.content`) };
}
