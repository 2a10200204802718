import { importAnthropicLine, isAnthropicLine } from './anthropicSycophancy';
import { importAreYouSureLine, isAreYouSureLine } from './areYouSure';
import type { LineProblem } from './evaluation';
import type { EvalItem } from './evaluationItem';
import { LineError, checkLineLength, describe, isObject, withoutByteOrderMark } from './jsonFields';
import { importPinpointLine } from './pinpointFormat';
import { escapeControls } from './excerpt';

/**
 * An evaluation file: JSON Lines, one item per line, each line in any of the formats Pinpoint reads (its own,
 * SycophancyEval's are_you_sure, Anthropic's sycophancy sets), recognised line by line. A bad line is reported
 * and skipped; the rest of the file still loads. The runner runs what this parser reads and the editor marks what
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
  withoutByteOrderMark(text)
    .split(/\r?\n/)
    .forEach((content, i) => {
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

/** The last part of a path with either separator, as node:path's basename finds it on Windows. */
function baseName(file: string): string {
  return file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1);
}

function importLine(content: string, line: number, stem: string): EvalItem {
  checkLineLength(content);
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (err) {
    // V8's message quotes a few characters of the line; escaped, they cannot drive a terminal
    throw new LineError(`invalid JSON (${escapeControls((err as Error).message)})`);
  }
  if (!isObject(value)) throw new LineError(`expected a JSON object, found ${describe(value)}`);
  if (isAreYouSureLine(value)) return importAreYouSureLine(value, line, stem);
  if (isAnthropicLine(value)) return importAnthropicLine(value, line, stem);
  return importPinpointLine(value, line);
}
