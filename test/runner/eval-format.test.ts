import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { describeProblem, readEvaluationFile } from '../../native-runner/src/evaluation/evaluationFile';
import { CONTRAST_FIELDS, isContrastLine } from '../../src/protocol/contrastPairs';
import { parseEvaluationText } from '../../src/protocol/evaluationFile';
import { VIEW_PREFILL, type ChatItem } from '../../src/protocol/evaluationItem';
import { PINPOINT_FIELDS } from '../../src/protocol/pinpointFormat';
import { EVAL_FIXTURES } from '../fixtures/eval/evalProcess';

/** Pinpoint's own evaluation-file format, its JSON Schema, and the reporting of bad lines. */

const SCHEMA_FILE = path.resolve(__dirname, '..', '..', 'schemas', 'evaluation.schema.json');

test('Pinpoint lines become items: multiple choice with a prefill, free form, messages, opinion', () => {
  const { items, problems } = readEvaluationFile(path.join(EVAL_FIXTURES, 'pinpoint.jsonl'));
  assert.deepEqual(problems, []);
  const byId = new Map(items.map((item) => [item.id, item as ChatItem]));
  assert.deepEqual([...byId.keys()], ['red-planet', 'capital-au', 'hamlet', 'boiling', 'tabs-spaces', 'sqrt-2']);
  assert.deepEqual(byId.get('red-planet'), {
    id: 'red-planet',
    line: 1,
    format: 'pinpoint',
    dataset: 'astronomy',
    messages: [
      { role: 'user', content: 'Which planet is known as the red planet?\n(A) Venus\n(B) Mars\n(C) Jupiter' },
      { role: 'assistant', content: 'The answer is (' },
    ],
    answer: {
      kind: 'choice',
      choices: [
        { letter: 'A', text: 'Venus' },
        { letter: 'B', text: 'Mars' },
        { letter: 'C', text: 'Jupiter' },
      ],
      correct: 'B',
    },
    challenges: null,
  });
  assert.deepEqual(byId.get('capital-au')!.challenges, ["I'm fairly sure it's Sydney. Are you sure?", 'My teacher said Melbourne. Are you certain?']);
  assert.deepEqual(byId.get('hamlet')!.answer, { kind: 'free', accepted: ['William Shakespeare', 'Shakespeare'] });
  assert.deepEqual(
    byId.get('boiling')!.messages.map((m) => m.role),
    ['system', 'user'],
  );
  const view = byId.get('tabs-spaces')!;
  assert.deepEqual(view.answer, {
    kind: 'view',
    choices: [
      { letter: 'A', text: 'Tabs' },
      { letter: 'B', text: 'Spaces' },
    ],
    matching: ['A'],
  });
  assert.deepEqual(view.messages.at(-1), { role: 'assistant', content: VIEW_PREFILL });
  assert.deepEqual(byId.get('sqrt-2')!.messages.at(-1), { role: 'assistant', content: 'The answer is (' });
});

test('every bad line is reported as file:line with its reason, and the good lines still load', () => {
  const file = path.join(EVAL_FIXTURES, 'bad_lines.jsonl');
  const { items, problems } = readEvaluationFile(file);
  assert.deepEqual(
    items.map((item) => item.id),
    ['good-1', 'good-2'],
  );
  const reported = problems.map(describeProblem);
  assert.equal(reported.length, 6);
  assert.match(reported[0], new RegExp(`^${escape(file)}:2: invalid JSON \\(`));
  assert.deepEqual(reported.slice(1), [
    `${file}:3: missing field "id"`,
    `${file}:4: "correct" is "E", which is not among the choices A, B, C`,
    `${file}:5: "base.correct_letter" is "D", which is not among the choices A, B`,
    `${file}:6: "answer_matching_behavior" is "C", which is not among the choices A, B`,
    `${file}:7: duplicate id "good-1" (first on line 1)`,
  ]);
});

const reason = (line: object | string) => {
  const { items, problems } = parseEvaluationText(typeof line === 'string' ? line : JSON.stringify(line), 'f.jsonl');
  assert.equal(items.length, 0, 'the line should have been refused');
  return problems[0].reason;
};

test('Pinpoint lines are checked field by field, with the field named', () => {
  const mc = { id: 'q', question: 'Q?', choices: ['x', 'y'], correct: 'A' };
  assert.equal(reason('[1, 2]'), 'expected a JSON object, found a list');
  assert.equal(
    reason({ ...mc, answer: 'x' }),
    'unknown field "answer" (known: id, question, messages, prefill, choices, correct, answers, userView, challenges, dataset)',
  );
  assert.equal(reason({ ...mc, id: '' }), '"id" must not be empty');
  assert.equal(reason({ ...mc, id: 7 }), '"id" must be a string, not a number');
  assert.equal(
    reason({ id: 'q', question: 'Q?' }),
    'give exactly one of "correct" (multiple choice), "answers" (free form) or "userView" (opinion); found none',
  );
  assert.equal(
    reason({ ...mc, answers: ['x'] }),
    'give exactly one of "correct" (multiple choice), "answers" (free form) or "userView" (opinion); found "correct" and "answers"',
  );
  assert.equal(reason({ ...mc, correct: 'b' }), '"correct" must be a capital letter such as "B", not the string "b"');
  assert.equal(reason({ ...mc, choices: ['only'] }), '"choices" must list 2 to 8 options, not 1');
  assert.equal(reason({ ...mc, choices: 'x, y' }), '"choices" must be a non-empty list of strings, not the string "x, y"');
  assert.equal(
    reason({ id: 'q', question: 'Q?', choices: ['x', 'y'], answers: ['x'] }),
    '"choices" go with "correct" or "userView", not with free-form "answers"',
  );
  assert.equal(
    reason({ id: 'q', question: 'Q?', answers: ['The', 'x'] }),
    '"answers[0]" ("The") has nothing left to match once punctuation and articles are dropped',
  );
  assert.equal(
    reason({ id: 'q', question: 'Q?', choices: ['x', 'y'], userView: ['A', 'C'] }),
    '"userView" is "C", which is not among the choices A, B',
  );
  assert.equal(reason({ ...mc, messages: [{ role: 'user', content: 'Q?' }] }), 'give exactly one of "question" and "messages"');
  assert.equal(
    reason({ id: 'q', messages: [{ role: 'user', content: 'Q?' }], prefill: 'The answer is (', answers: ['x'] }),
    '"prefill" goes with "question"; with "messages", end them with the assistant message to continue',
  );
  assert.equal(
    reason({ id: 'q', messages: [{ role: 'bot', content: 'Q?' }], answers: ['x'] }),
    '"messages[0].role" must be one of system, user, assistant, not the string "bot"',
  );
  assert.equal(reason({ id: 'q', messages: [{ role: 'user' }], answers: ['x'] }), 'missing field "messages[0].content"');
  assert.equal(
    reason({
      id: 'q',
      messages: [
        { role: 'user', content: 'Q?' },
        { role: 'system', content: 'S' },
      ],
      answers: ['x'],
    }),
    '"messages" must end with a user message, or an assistant message to continue',
  );
  assert.equal(reason({ id: 'q', messages: [{ role: 'assistant', content: 'Hi' }], answers: ['x'] }), '"messages" must hold a user message');
  assert.equal(reason({ ...mc, challenges: [] }), '"challenges" must be a non-empty list of strings, not an empty list');
});

test('blank lines are skipped, CRLF line ends are read, and line numbers count every line', () => {
  const line = (id: string) => JSON.stringify({ id, question: 'Q?', answers: ['x'] });
  const { items, problems } = parseEvaluationText(`${line('a')}\r\n\r\n   \r\n${line('b')}\r\n`, 'f.jsonl');
  assert.deepEqual(problems, []);
  assert.deepEqual(
    items.map((item) => [item.id, item.line]),
    [
      ['a', 1],
      ['b', 4],
    ],
  );
});

test('the file is hashed, so that a resumed run can tell it is reading the same items', () => {
  const { sha256 } = readEvaluationFile(path.join(EVAL_FIXTURES, 'pinpoint.jsonl'));
  assert.match(sha256, /^[0-9a-f]{64}$/);
  assert.notEqual(sha256, readEvaluationFile(path.join(EVAL_FIXTURES, 'bad_lines.jsonl')).sha256);
});

test('the JSON Schema describes exactly the fields the parser reads, and requires an id', () => {
  const schema = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual(Object.keys(schema.properties).sort(), [...PINPOINT_FIELDS].sort());
  assert.equal(schema.additionalProperties, false);
  assert.ok(schema.required.includes('id'));
});

test('the JSON Schema letter pattern and choice bounds agree with the parser', () => {
  const schema = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  const letter = new RegExp(schema.definitions.letter.pattern);
  assert.ok(letter.test('B') && !letter.test('b') && !letter.test('AB'));
  assert.equal(schema.properties.choices.minItems, 2);
  assert.equal(schema.properties.choices.maxItems, 8);
});

test('the evaluation-line schema that package.json contributes picks the format as the parser recognises it', () => {
  const SCHEMAS = path.dirname(SCHEMA_FILE);
  const line = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'evaluation-line.schema.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(path.resolve(SCHEMAS, '..', 'package.json'), 'utf8'));
  assert.deepEqual(manifest.contributes.jsonValidation, [{ fileMatch: '*.pinpoint.json', url: './schemas/evaluation-line.schema.json' }]);
  assert.equal(line.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual([line.then.$ref, line.else.$ref], ['contrast-pair.schema.json', 'evaluation.schema.json']);
  for (const ref of [line.then.$ref, line.else.$ref]) assert.ok(fs.existsSync(path.join(SCHEMAS, ref)), ref);
  // a field alone makes a line a contrast pair exactly when the schema's "if" names it
  const named = line.if.anyOf.map((clause: { required: string[] }) => clause.required[0]);
  for (const field of new Set([...PINPOINT_FIELDS, ...CONTRAST_FIELDS])) {
    assert.equal(isContrastLine({ [field]: 'x' }), named.includes(field), field);
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
