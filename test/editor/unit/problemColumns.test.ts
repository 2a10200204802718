import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { problemColumns } from '../../../src/extension/problemColumns';
import { parseEvaluationText } from '../../../src/protocol/evaluationFile';

const FILE = path.resolve(__dirname, '..', '..', 'fixtures', 'editor', 'broken-eval.jsonl');

/** The text each problem of broken-eval.jsonl is placed on, by the evaluation-file parser and problemColumns together. */
test('every problem of an evaluation file is placed on the text at fault', () => {
  const text = fs.readFileSync(FILE, 'utf8');
  const lines = text.split('\n');
  const marked = parseEvaluationText(text, FILE).problems.map(({ line, reason }) => {
    const { start, end } = problemColumns(lines[line - 1], reason);
    return [line, lines[line - 1].slice(start, end)];
  });
  assert.deepEqual(marked, [
    [2, '"unterminated'],
    [3, '"E"'],
    [4, '"answer"'],
    [5, '"robot"'],
    [6, '{"question": "No id", "answers": ["x"]}'],
    [7, '"ok"'],
  ]);
});

test('a missing nested field marks the object that lacks it', () => {
  const line = '{"id": "m", "messages": [{"role": "user"}], "answers": ["x"]}';
  const { start, end } = problemColumns(line, 'missing field "messages[0].content"');
  assert.equal(line.slice(start, end), '{"role": "user"}');
});

test('a syntax error at the end of the line still marks one character', () => {
  const line = '{"id": "a", "question": "q"';
  const { start, end } = problemColumns(line, "invalid JSON (Expected ',' or '}' after property value in JSON at position 27)");
  assert.equal(end - start, 1);
  assert.equal(start, line.length - 1);
});
