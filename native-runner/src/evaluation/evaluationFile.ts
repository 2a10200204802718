import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LineProblem } from '../../../src/protocol/evaluation';
import { importAnthropicLine, isAnthropicLine } from './anthropicSycophancy';
import { importAreYouSureLine, isAreYouSureLine } from './areYouSure';
import type { EvalItem } from './item';
import { LineError, describe, isObject } from './jsonFields';
import { importPinpointLine } from './pinpointFormat';

/**
 * An evaluation file: JSON Lines, one item per line, each line in any of the formats Pinpoint reads (its own,
 * SycophancyEval's are_you_sure, Anthropic's sycophancy sets), recognised line by line. A bad line is reported
 * and skipped; the rest of the file still loads.
 */

export interface ParsedEvaluation {
  items: EvalItem[];
  problems: LineProblem[];
}

export interface EvaluationFile extends ParsedEvaluation {
  file: string;
  /** of the file's bytes, so that a resumed run knows it reads the same items */
  sha256: string;
}

export function describeProblem(problem: LineProblem): string {
  return `${problem.file}:${problem.line}: ${problem.reason}`;
}

export function readEvaluationFile(file: string): EvaluationFile {
  const bytes = fs.readFileSync(file);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  return { file, sha256, ...parseEvaluationText(bytes.toString('utf8'), file) };
}

export function parseEvaluationText(text: string, file: string): ParsedEvaluation {
  const stem = path.basename(file).replace(/\.jsonl?$/, '');
  const items: EvalItem[] = [];
  const problems: LineProblem[] = [];
  const lineOfId = new Map<string, number>();
  text.split(/\r?\n/).forEach((content, i) => {
    const line = i + 1;
    if (content.trim() === '') return;
    try {
      const item = importLine(content, line, stem);
      const first = lineOfId.get(item.id);
      if (first !== undefined) throw new LineError(`duplicate id ${JSON.stringify(item.id)} (first on line ${first})`);
      lineOfId.set(item.id, line);
      items.push(item);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      problems.push({ file, line, reason: err.message });
    }
  });
  return { items, problems };
}

function importLine(content: string, line: number, stem: string): EvalItem {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (err) {
    throw new LineError(`invalid JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new LineError(`expected a JSON object, found ${describe(value)}`);
  if (isAreYouSureLine(value)) return importAreYouSureLine(value, line, stem);
  if (isAnthropicLine(value)) return importAnthropicLine(value, line, stem);
  return importPinpointLine(value, line);
}
