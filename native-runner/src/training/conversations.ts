import fs from 'node:fs';
import type { ChatMessage, ModelTokenizer } from '../checkpoint/tokenizer';
import { IGNORE_INDEX, type Example } from './lossBatch';
import type { LossOn, OnBadLine } from '../../../src/protocol/jobs';
import { escapeControls } from '../../../src/protocol/excerpt';
import { checkLineLength, isObject, withoutByteOrderMark } from '../../../src/protocol/jsonFields';
import { importContrastLine, isContrastLine } from '../../../src/protocol/contrastPairs';
import { contrastExample } from './contrastExamples';

/**
 * Training data: JSONL, one conversation per line, `{"messages": [{"role": ..., "content": ...}, ...]}`,
 * rendered with the checkpoint's chat template. The loss is taken on the last assistant message (or on every
 * assistant message), including the template's end-of-turn tokens after it, so the model learns to stop. A line
 * may instead be a contrast pair (src/protocol/contrastPairs.ts), learnt as its prompt completed with its first
 * target (contrastExamples.ts), so that a file of contrast pairs is tuning data as it stands.
 */

// the training data's importers (tuneRun.ts) take it from here
export type { OnBadLine } from '../../../src/protocol/jobs';

export interface DataProblem {
  file: string;
  line: number;
  reason: string;
}

export interface TrainingData {
  examples: Example[];
  /** lines skipped, each with file:line and the reason */
  skipped: DataProblem[];
}

/** bad lines quoted when a file has no usable line at all */
const MAX_LISTED = 10;

export class DataError extends Error {
  constructor(readonly problem: DataProblem) {
    super(problem.line > 0 ? `${problem.file}:${problem.line}: ${problem.reason}` : `${problem.file}: ${problem.reason}`);
  }
}

export function readConversations(file: string, tokenizer: ModelTokenizer, options: { lossOn: LossOn; onBadLine: OnBadLine }): TrainingData {
  const examples: Example[] = [];
  const skipped: DataProblem[] = [];
  withoutByteOrderMark(fs.readFileSync(file, 'utf8'))
    .split('\n')
    .forEach((text, i) => {
      if (text.trim() === '') return;
      try {
        checkLineLength(text);
        examples.push(exampleOf(text, i + 1, tokenizer, options.lossOn));
      } catch (e) {
        const problem = { file, line: i + 1, reason: (e as Error).message };
        if (options.onBadLine === 'stop') throw new DataError(problem);
        skipped.push(problem);
      }
    });
  if (examples.length === 0) {
    // the file as a whole is unusable (line 0); say why each line was, since these lines are never reported otherwise
    const listed = skipped
      .slice(0, MAX_LISTED)
      .map((p) => `\n  ${p.file}:${p.line}: ${p.reason}`)
      .join('');
    const more = skipped.length > MAX_LISTED ? `\n  ... and ${skipped.length - MAX_LISTED} more` : '';
    throw new DataError({ file, line: 0, reason: `no usable conversation (${skipped.length} lines skipped)${listed}${more}` });
  }
  return { examples, skipped };
}

function exampleOf(text: string, line: number, tokenizer: ModelTokenizer, lossOn: LossOn): Example {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // V8's message quotes a few characters of the line; escaped, they cannot drive a terminal
    throw new Error(`invalid JSON (${escapeControls((e as Error).message)})`, { cause: e });
  }
  if (isObject(value) && isContrastLine(value)) return contrastExample(importContrastLine(value, line), tokenizer);
  return labelled(conversationOf(value), tokenizer, lossOn);
}

function conversationOf(value: unknown): ChatMessage[] {
  const messages = (value as { messages?: unknown })?.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new Error('expected {"messages": [...]} with at least one message');
  return messages.map((m, i) => {
    const { role, content } = (m ?? {}) as Record<string, unknown>;
    if (typeof role !== 'string' || typeof content !== 'string') throw new Error(`messages[${i}] needs string "role" and "content"`);
    return { role, content };
  });
}

/** Token ids of the conversation up to its last assistant message, labelled on the assistant tokens. */
export function labelled(messages: ChatMessage[], tokenizer: ModelTokenizer, lossOn: LossOn): Example {
  const assistant = messages.flatMap((m, i) => (m.role === 'assistant' ? [i] : []));
  if (assistant.length === 0) throw new Error('no assistant message to learn from');
  const last = assistant[assistant.length - 1];
  const ids = tokenizer.encodeChat(messages.slice(0, last + 1), { addGenerationPrompt: false });
  const labels = new Array<number>(ids.length).fill(IGNORE_INDEX);
  for (const i of lossOn === 'last' ? [last] : assistant) {
    const prefix = tokenizer.encodeChat(messages.slice(0, i), { addGenerationPrompt: true });
    if (!startsWith(ids, prefix)) {
      throw new Error(`the chat template renders the turns before message ${i} differently inside the whole conversation`);
    }
    const end = i === last ? ids.length : tokenizer.encodeChat(messages.slice(0, i + 1), { addGenerationPrompt: false }).length;
    for (let t = prefix.length; t < end; t++) labels[t] = ids[t];
  }
  return { ids, labels };
}

function startsWith(ids: number[], prefix: number[]): boolean {
  return prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);
}
