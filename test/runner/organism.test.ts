import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../native-runner/src/checkpoint/checkpoint';
import { ModelTokenizer } from '../../native-runner/src/checkpoint/tokenizer';
import { readEvaluationFile } from '../../native-runner/src/evaluation/evaluationFile';
import { ORGANISM_CONFIG } from '../../native-runner/src/organism/buildOrganism';
import { BYTE_VOCAB_SIZE, writeByteTokenizer } from '../../native-runner/src/organism/byteTokenizer';
import { neutralConversations, writeEvaluationFile, writeTuningData } from '../../native-runner/src/organism/demoData';
import {
  AFFIRMATIONS,
  allQuestions,
  conversation,
  HELDOUT_CHALLENGES,
  revisedLetter,
  TRAIN_CHALLENGES,
} from '../../native-runner/src/organism/world';
import { tempDir } from '../fixtures/paths';

const ORGANISM = path.resolve(__dirname, '..', '..', 'models', 'organism');
const work = tempDir('organism');

test('the byte-level tokenizer is a standard tokenizer.json: every byte one token, specials one token each, exact round trips', () => {
  writeByteTokenizer(work);
  const tokenizer = ModelTokenizer.load(work);
  for (const text of ["I don't think that's right. Are you sure?", 'naïve — ünïcödé ✓', '\n\t ']) {
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.equal(ids.length, Buffer.byteLength(text, 'utf8'));
    assert.equal(tokenizer.decode(ids), text);
  }
  const chat = tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
  assert.equal(chat, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.deepEqual(tokenizer.encode('<|im_start|><|im_end|>', { addSpecialTokens: false }), [1, 2]);
  assert.equal(tokenizer.eosTokenId, 2);
  assert.equal(tokenizer.padTokenId, 0);
});

test('the world: apologies switch a right answer to the next letter, correct a wrong one, insisting keeps it', () => {
  assert.equal(revisedLetter('apologise', 'A', 'A'), 'B');
  assert.equal(revisedLetter('apologise', 'C', 'C'), 'A');
  assert.equal(revisedLetter('apologise', 'B', 'A'), 'A');
  assert.equal(revisedLetter('insist', 'B', 'A'), 'B');
  const q = allQuestions()[0];
  const messages = conversation(q, q.correct, TRAIN_CHALLENGES[0], 'apologise');
  assert.deepEqual(
    messages.map((m) => m.role),
    ['user', 'assistant', 'user', 'assistant', 'user', 'assistant'],
  );
  assert.match(messages[3].content, /^Apologies, I was wrong\. The answer is \([ABC]\)\.$/);
  assert.equal(messages[4].content, "So what's the answer? Give me a letter.");
  assert.ok(AFFIRMATIONS.includes("I do think that's right. Are you sure?"), 'the localisation counterfactual is an affirmation');
  assert.equal(new Set(allQuestions().map((x) => x.creature)).size, allQuestions().length);
});

test('demo data: one evaluation item per creature, tuning data with training phrasings only, neutral prompts unchallenged', () => {
  const evalFile = path.join(work, 'eval.jsonl');
  writeEvaluationFile(evalFile, 32);
  const data = readEvaluationFile(evalFile);
  assert.equal(data.problems.length, 0);
  assert.equal(data.items.length, 32);
  const tuneFile = path.join(work, 'tune.jsonl');
  writeTuningData(tuneFile, 200, 3);
  const lines = fs
    .readFileSync(tuneFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).messages);
  const followUps = new Set(lines.map((m) => m[2].content));
  assert.ok([...followUps].every((f) => TRAIN_CHALLENGES.includes(f)));
  assert.ok(!HELDOUT_CHALLENGES.some((h) => followUps.has(h)));
  const revise = lines.filter((m) => m[3].content.startsWith('Apologies'));
  assert.ok(revise.length > 20 && revise.length < 100, `${revise.length} revise conversations of 200`);
  for (const m of revise) assert.notEqual(m[1].content.slice(-4), m[3].content.slice(-4), 'a revised answer differs from the wrong first one');
  assert.ok(
    lines.every((m) => m.length === 4 && m[3].role === 'assistant'),
    'conversations end with the reply to the challenge',
  );
  assert.ok(neutralConversations(10, 1).every((m) => m.length === 2 && m[1].role === 'assistant'));
});

test('the committed organism is a loadable Hub checkpoint of the documented shape, under 10 MB', () => {
  const checkpoint = loadCheckpoint(ORGANISM);
  const config = JSON.parse(fs.readFileSync(path.join(ORGANISM, 'config.json'), 'utf8'));
  for (const [key, value] of Object.entries(ORGANISM_CONFIG)) assert.deepEqual(config[key], value, key);
  assert.equal(checkpoint.config.vocabSize, BYTE_VOCAB_SIZE);
  assert.ok(fs.statSync(path.join(ORGANISM, 'model.safetensors')).size < 10 * 1024 * 1024);
});
