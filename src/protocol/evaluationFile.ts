import { importAnswerLine, isSuggestionLine } from './answerSycophancy';
import { importAnthropicLine, isAnthropicLine } from './anthropicSycophancy';
import { importAreYouSureLine, isAreYouSureLine } from './areYouSure';
import { importContrastLine, isContrastLine } from './contrastPairs';
import type { LineProblem } from './evaluation';
import { isContrastItem, isSuggestionItem, type EvalItem } from './evaluationItem';
import { LineError, checkLineLength, describe, isObject, withoutByteOrderMark, type JsonObject } from './jsonFields';
import { importPinpointLine } from './pinpointFormat';
import { escapeControls } from './excerpt';

/**
 * An evaluation file: JSON Lines, one item per line, each line in any of the formats Pinpoint reads (its own,
 * SycophancyEval's are_you_sure and answer, Anthropic's sycophancy sets, contrast pairs), recognised line by line,
 * except that one suggestion line makes the file answer.jsonl, whose plain lines are written as are_you_sure's are.
 * A file holds questions, contrast pairs or answer.jsonl's trials, one kind only: their metrics do not mix, and
 * localisation reads one kind of pair; within answer.jsonl, a question has one line per template.
 * A bad line is reported and skipped; the rest of the file still loads. The runner runs what this parser reads and the editor marks what
 * it skips, so both import it from here: pure TypeScript, nothing of Node.
 */

export interface ParsedEvaluation {
  items: EvalItem[];
  problems: LineProblem[];
}

/** `file` names the file in the problems; its name, less .jsonl, is the id prefix of the formats without ids. */
export function parseEvaluationText(text: string, file: string): ParsedEvaluation {
  const stem = baseName(file).replace(/\.jsonl?$/, '');
  const items: EvalItem[] = [];
  const problems: LineProblem[] = [];
  const lineOfId = new Map<string, number>();
  const lineOfTrial = new Map<string, number>();
  const lines = withoutByteOrderMark(text)
    .split(/\r?\n/)
    .map((content, i) => ({ line: i + 1, value: content.trim() === '' ? null : parseLine(content) }));
  const suggestion = lines.find(({ value }) => isObject(value) && isSuggestionLine(value));
  const reading: Reading = { stem, answerFile: suggestion && `line ${suggestion.line} has a suggestion template` };
  for (const { line, value } of lines) {
    if (value === null) continue;
    try {
      const item = importLine(value, line, reading);
      const first = lineOfId.get(item.id);
      if (first !== undefined) throw new LineError(`duplicate id ${JSON.stringify(item.id)} (first on line ${first})`);
      if (items.length > 0) checkSameKind(item, items[0]);
      if (isSuggestionItem(item)) checkOneTrial(lineOfTrial, item.question, item.answer.template, line);
      lineOfId.set(item.id, line);
      items.push(item);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      problems.push({ file, line, reason: err.message });
    }
  }
  return { items, problems };
}

/** How the lines are read: `answerFile` says why the file is answer.jsonl, when it is. */
interface Reading {
  stem: string;
  answerFile: string | undefined;
}

/** The kinds of item a file may hold, one kind a file, in the order its error names them. */
const ITEM_KINDS = ['question', 'contrast pair', 'answer.jsonl trial'] as const;
type ItemKind = (typeof ITEM_KINDS)[number];

function kindOf(item: EvalItem): ItemKind {
  if (isContrastItem(item)) return 'contrast pair';
  return isSuggestionItem(item) ? 'answer.jsonl trial' : 'question';
}

function checkSameKind(item: EvalItem, first: EvalItem): void {
  const [kind, firstKind] = [kindOf(item), kindOf(first)];
  if (kind === firstKind) return;
  const both = ITEM_KINDS.filter((k) => k === kind || k === firstKind).map((k) => `${k}s`);
  throw new LineError(
    `${article(kind)} in a file whose first item (line ${first.line}) is ${article(firstKind)}; a file holds ${both.join(' or ')}, not both`,
  );
}

function article(kind: ItemKind): string {
  return `${kind.startsWith('answer') ? 'an' : 'a'} ${kind}`;
}

/**
 * Two lines of one question and template would make its plain-against-suggested comparison ambiguous: which of
 * the two is the question's answer under that template?
 */
function checkOneTrial(lineOfTrial: Map<string, number>, question: string, template: string, line: number): void {
  const key = JSON.stringify([question, template]);
  const first = lineOfTrial.get(key);
  if (first !== undefined) {
    throw new LineError(
      `the question ${JSON.stringify(question)} has a "${template}" trial already (line ${first}); a question has one line per template`,
    );
  }
  lineOfTrial.set(key, line);
}

/** The last part of a path with either separator, as node:path's basename finds it on Windows. */
function baseName(file: string): string {
  return file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1);
}

/** A line's JSON object, or the LineError that refuses it, thrown when its line's turn comes to be imported. */
function parseLine(content: string): JsonObject | LineError {
  try {
    return jsonObject(content);
  } catch (err) {
    if (!(err instanceof LineError)) throw err;
    return err;
  }
}

function jsonObject(content: string): JsonObject {
  checkLineLength(content);
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (err) {
    // V8's message quotes a few characters of the line; escaped, they cannot drive a terminal
    throw new LineError(`invalid JSON (${escapeControls((err as Error).message)})`);
  }
  if (!isObject(value)) throw new LineError(`expected a JSON object, found ${describe(value)}`);
  return value;
}

function importLine(value: JsonObject | LineError, line: number, { stem, answerFile }: Reading): EvalItem {
  if (value instanceof LineError) throw value;
  if (isContrastLine(value)) return importContrastLine(value, line);
  if (isAreYouSureLine(value)) return answerFile ? importAnswerLine(value, line, stem, answerFile) : importAreYouSureLine(value, line, stem);
  if (isAnthropicLine(value)) return importAnthropicLine(value, line, stem);
  return importPinpointLine(value, line);
}
