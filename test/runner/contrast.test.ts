import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { writeRandomCheckpoint } from '../../native-runner/src/checkpoint/randomCheckpoint';
import { ModelTokenizer } from '../../native-runner/src/checkpoint/tokenizer';
import { contrastPrompts } from '../../native-runner/src/evaluation/contrastProtocol';
import { evalCommand } from '../../native-runner/src/evaluation/evalCommand';
import { describeProblem, readEvaluationFile } from '../../native-runner/src/evaluation/evaluationFile';
import { knockoutCommand } from '../../native-runner/src/localisation/knockoutCommand';
import { locate, type LocateOptions } from '../../native-runner/src/localisation/locate';
import { locateCommand } from '../../native-runner/src/localisation/locateCommand';
import { DEFAULT_CHALLENGE, DEFAULT_COUNTERFACTUAL, DEFAULT_TARGETS } from '../../native-runner/src/localisation/patchingPrompts';
import { forward } from '../../native-runner/src/runtime/forward';
import { Model } from '../../native-runner/src/runtime/model';
import { parseKnockoutReport, parseResultLines, parseSummary, type ContrastItemResult } from '../../src/protocol/evaluation';
import { parseEvaluationText } from '../../src/protocol/evaluationFile';
import { isContrastItem, type ContrastItem } from '../../src/protocol/evaluationItem';
import { parseHeadsFile } from '../../src/protocol/heads';
import { ADAMW_DEFAULTS } from '../../native-runner/src/training/adamw';
import { readConversations } from '../../native-runner/src/training/conversations';
import { IGNORE_INDEX } from '../../native-runner/src/training/lossBatch';
import { tune } from '../../native-runner/src/training/tuneRun';
import { compareCommand } from '../../native-runner/src/comparison/compareCommand';
import type { ComparisonReport } from '../../src/protocol/comparison';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';
import { contrastingTokens, plantHead } from '../fixtures/plantedHead';
import { PLANTABLE_LLAMA } from '../fixtures/tinyModels';

/**
 * Contrast pairs (issue 15): the line format and its errors; and on a random checkpoint with one head planted to
 * carry the prompt-vs-counterfactual difference into the targets' logit difference, `pinpoint eval` reports that
 * difference, `locate` ranks the planted head first and knocking it out removes the difference.
 */

const work = tempDir('contrast');
before(() => {
  process.env.PINPOINT_CACHE = path.join(work, 'cache');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

// --- the line format ---

const reason = (line: object | string, file = 'pairs.jsonl') => {
  const { items, problems } = parseEvaluationText(typeof line === 'string' ? line : JSON.stringify(line), file);
  assert.equal(items.length, 0, 'the line should have been refused');
  return problems[0].reason;
};

const PAIR = {
  id: 'ioi-1',
  prompt: 'When Mary and John went out, John gave a drink to',
  counterfactual: 'When Mary and John went out, Mary gave a drink to',
  targets: [' Mary', ' John'],
};

test('a contrast pair is recognised by its fields or by "behaviour": "contrast", and read as raw text', () => {
  const { items, problems } = parseEvaluationText(
    [JSON.stringify({ ...PAIR, dataset: 'ioi' }), JSON.stringify({ ...PAIR, id: 'ioi-2', behaviour: 'contrast' })].join('\n'),
    'pairs.jsonl',
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(items[0], {
    id: 'ioi-1',
    line: 1,
    format: 'contrast',
    dataset: 'ioi',
    prompt: PAIR.prompt,
    counterfactual: PAIR.counterfactual,
    answer: { kind: 'contrast', targets: [' Mary', ' John'] },
  });
  assert.equal(items[1].dataset, null);
  assert.ok(items.every(isContrastItem));
});

test('a malformed contrast pair is refused naming the field and what was expected', () => {
  const { prompt: _, ...noPrompt } = PAIR;
  assert.equal(reason(noPrompt), 'missing field "prompt"');
  assert.equal(reason({ ...PAIR, counterfactual: '' }), '"counterfactual" must not be empty');
  assert.equal(
    reason({ ...PAIR, counterfactual: PAIR.prompt }),
    '"counterfactual" must differ from "prompt": the pair localises what differs between them',
  );
  assert.equal(
    reason({ ...PAIR, targets: [' Mary'] }),
    '"targets" must be a list of two completions [the prompt\'s, the counterfactual\'s], not a list',
  );
  assert.equal(
    reason({ ...PAIR, targets: ' Mary' }),
    '"targets" must be a list of two completions [the prompt\'s, the counterfactual\'s], not the string " Mary"',
  );
  assert.equal(reason({ ...PAIR, targets: [' Mary', 3] }), '"targets[1]" must be a non-empty string, not a number');
  assert.equal(reason({ ...PAIR, targets: [' Mary', ' Mary'] }), '"targets" must be two different completions, not " Mary" twice');
  assert.equal(
    reason({ ...PAIR, behaviour: 'challenge' }),
    '"behaviour" must be "contrast", not the string "challenge" (the other behaviours are recognised by their fields)',
  );
  assert.equal(reason({ ...PAIR, id: 4 }), '"id" must be a string, not a number');
});

test('a line with the fields of a contrast pair and of a question is ambiguous, and says why it was read as a pair', () => {
  assert.equal(
    reason({ id: 'q', question: 'Q?', answers: ['x'], counterfactual: 'R?' }),
    'unknown fields "question", "answers" (known: id, prompt, counterfactual, targets, dataset, behaviour); the line is read as a contrast pair because it has "counterfactual"',
  );
  assert.equal(
    reason({ prompt: [{ type: 'human', content: 'Q?' }], base: { correct_answer: 'x' }, behaviour: 'contrast' }),
    'unknown field "base" (known: id, prompt, counterfactual, targets, dataset, behaviour); the line is read as a contrast pair because it says "behaviour": "contrast"',
  );
});

test("a file holds questions or contrast pairs, not both: the line of the other kind is reported, with the first item's line", () => {
  const question = JSON.stringify({ id: 'q', question: 'Q?', answers: ['x'] });
  const { items, problems } = parseEvaluationText([JSON.stringify(PAIR), '', question].join('\n'), 'mixed.jsonl');
  assert.deepEqual(
    items.map((i) => i.id),
    ['ioi-1'],
  );
  assert.deepEqual(problems.map(describeProblem), [
    'mixed.jsonl:3: a question in a file whose first item (line 1) is a contrast pair; a file holds questions or contrast pairs, not both',
  ]);
  assert.equal(
    parseEvaluationText([question, JSON.stringify(PAIR)].join('\n'), 'mixed.jsonl').problems[0].reason,
    'a contrast pair in a file whose first item (line 1) is a question; a file holds questions or contrast pairs, not both',
  );
});

test('the contrast-pair JSON Schema describes exactly the fields the parser reads', async () => {
  const { CONTRAST_FIELDS } = await import('../../src/protocol/contrastPairs');
  const schema = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'schemas', 'contrast-pair.schema.json'), 'utf8'));
  assert.deepEqual(Object.keys(schema.properties).sort(), [...CONTRAST_FIELDS].sort());
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual([...schema.required].sort(), ['counterfactual', 'id', 'prompt', 'targets']);
});

// --- a planted head: a checkpoint in which one head carries the pronoun's referent ---

/** Gendered pronouns: each prompt names a woman, its counterfactual a man; " she" is the prompt's completion. */
const PAIRS = [
  { id: 'mary', prompt: 'Mary went to the shop because', counterfactual: 'John went to the shop because', dataset: 'pronouns' },
  { id: 'anna', prompt: 'Anna said that', counterfactual: 'Peter said that', dataset: 'pronouns' },
  { id: 'lucy', prompt: 'Lucy was late, so', counterfactual: 'Mark was late, so', behaviour: 'contrast' },
].map((pair) => ({ ...pair, targets: [' she', ' he'] }));

const PLANTED = 1;

interface Planted {
  dir: string;
  dataFile: string;
  items: ContrastItem[];
  targets: [number, number];
}

let planted: Planted | undefined;
function plantedCheckpoint(): Planted {
  if (planted) return planted;
  const dir = path.join(work, 'planted');
  writeRandomCheckpoint(dir, PLANTABLE_LLAMA, { seed: 5, tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
  const dataFile = path.join(work, 'pronouns.jsonl');
  fs.writeFileSync(dataFile, PAIRS.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const { items, problems } = readEvaluationFile(dataFile);
  assert.deepEqual(problems, []);
  const pairs = items.filter(isContrastItem);
  const tokenizer = ModelTokenizer.load(dir);
  const prompts = pairs.map((item) => contrastPrompts(tokenizer, item));
  const targets = prompts[0].targetIds;
  for (const p of prompts) assert.deepEqual(p.targetIds, targets, 'every pair compares the same two tokens');
  plantHead(dir, PLANTABLE_LLAMA, {
    head: PLANTED,
    ...contrastingTokens(
      prompts.map((p) => p.prompt),
      prompts.map((p) => p.counterfactual),
    ),
    targets,
    vScale: 2,
    oScale: 2,
  });
  planted = { dir, dataFile, items: pairs, targets };
  return planted;
}

async function withModel<T>(dir: string, body: (model: Model) => Promise<T>): Promise<T> {
  const model = Model.load(dir, { device: 'cpu' });
  try {
    return await body(model);
  } finally {
    await model.dispose();
  }
}

test("pinpoint eval on contrast pairs: each pair's logit differences as the model computes them, accuracy and mean with intervals", async () => {
  const { dir, dataFile, items, targets } = plantedCheckpoint();
  const out = path.join(work, 'eval');
  assert.equal(await evalCommand(['--model', dir, '--data', dataFile, '--out', out, '--device', 'cpu', '--batch-size', '2']), 0);
  const lines = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').split('\n').slice(0, -1);
  const results = parseResultLines('results.jsonl', lines) as ContrastItemResult[];
  assert.deepEqual(
    results.map((r) => [r.id, r.kind, r.format]),
    items.map((i) => [i.id, 'contrast', 'contrast']),
  );
  await withModel(dir, async (model) => {
    for (const [i, item] of items.entries()) {
      const p = contrastPrompts(model.tokenizer, item);
      const prompts = [p.prompt, p.counterfactual];
      const { logitsAt } = await forward(model, { prompts, reads: prompts.map((ids, row) => ({ row, position: ids.length - 1, ids: targets })) });
      const r = results[i];
      assert.deepEqual(r.targetIds, targets);
      assert.deepEqual(r.targets, [' she', ' he']);
      assert.ok(Math.abs(r.prompt.a - logitsAt[0][0]) < 1e-4 && Math.abs(r.prompt.b - logitsAt[0][1]) < 1e-4, `${item.id}: prompt logits`);
      assert.ok(Math.abs(r.counterfactual.logitDiff - (logitsAt[1][0] - logitsAt[1][1])) < 1e-4, `${item.id}: counterfactual logit difference`);
      // the planted head adds to " she" - " he" after a woman's name only
      assert.ok(r.prompt.logitDiff > r.counterfactual.logitDiff + 1, `${item.id}: ${r.prompt.logitDiff} vs ${r.counterfactual.logitDiff}`);
      assert.equal(r.prefersTarget, r.prompt.logitDiff > 0);
    }
  });
  const summary = parseSummary(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'), 'summary.json');
  assert.equal(summary.status, 'complete');
  assert.equal(summary.metrics.challenge, null);
  assert.equal(summary.metrics.view, null);
  const contrast = summary.metrics.contrast!;
  assert.equal(contrast.run.items, 3);
  const meanDiff = results.reduce((s, r) => s + r.prompt.logitDiff, 0) / results.length;
  assert.ok(Math.abs(contrast.run.logitDiff.value! - meanDiff) < 1e-9);
  assert.equal(contrast.run.accuracy.value, results.filter((r) => r.prefersTarget).length / 3);
  for (const e of [contrast.run.accuracy, contrast.run.logitDiff, contrast.run.counterfactualLogitDiff]) {
    assert.ok(e.low !== null && e.high !== null && e.low <= e.value! && e.value! <= e.high, JSON.stringify(e));
  }
  assert.deepEqual(Object.keys(contrast.byDataset), ['pronouns']);
  assert.equal(contrast.byDataset.pronouns.items, 2);
});

test('a pair whose targets start with the same token fails alone, named with its line; the run goes on', async () => {
  const { dir } = plantedCheckpoint();
  const dataFile = path.join(work, 'same-token.jsonl');
  const lines = [PAIRS[0], { ...PAIRS[1], targets: [' she', ' shell'] }];
  fs.writeFileSync(dataFile, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const out = path.join(work, 'eval-same-token');
  assert.equal(await evalCommand(['--model', dir, '--data', dataFile, '--out', out, '--device', 'cpu']), 0);
  const summary = parseSummary(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'), 'summary.json');
  assert.deepEqual(summary.progress, { done: 1, total: 2 });
  assert.equal(summary.failedItems.length, 1);
  assert.equal(summary.failedItems[0].line, 2);
  assert.match(summary.failedItems[0].reason, /^its targets " she" and " shell" start with the same token \d+/);
});

const LOCATE: Omit<LocateOptions, 'method'> = {
  positions: 'last',
  metric: 'logit_diff',
  // the challenge's settings, which contrast pairs do without
  challenge: DEFAULT_CHALLENGE,
  counterfactual: DEFAULT_COUNTERFACTUAL,
  targets: DEFAULT_TARGETS,
};

for (const method of ['path', 'attribution', 'activation'] as const) {
  test(`locate (${method}) on contrast pairs ranks the planted head first`, async () => {
    const { dir, items } = plantedCheckpoint();
    await withModel(dir, async (model) => {
      const heads = await locate(model, items, { ...LOCATE, method }, () => {});
      assert.deepEqual(heads.skipped, []);
      assert.equal(heads.behaviour, 'contrast');
      assert.deepEqual({ layer: heads.ranking[0].layer, head: heads.ranking[0].head }, { layer: 0, head: PLANTED });
      // patching in the counterfactual's value (zero) takes the planted contribution away; attribution's linear estimate of it is smaller
      assert.ok(heads.effects[0][PLANTED] < (method === 'attribution' ? 0 : -1), `effect ${heads.effects[0][PLANTED]}`);
      // attribution's estimate also credits layer 1's heads, whose inputs the planted head changes: their z differ between the prompts
      const margin = method === 'attribution' ? 3 : 5;
      assert.ok(Math.abs(heads.ranking[0].score) > margin * Math.abs(heads.ranking[1].score), JSON.stringify(heads.ranking.slice(0, 3)));
    });
  });
}

test("pinpoint locate on a contrast file writes heads.json with the pairs' own targets and no challenge", async () => {
  const { dir, dataFile, targets } = plantedCheckpoint();
  const out = path.join(work, 'locate');
  assert.equal(await locateCommand(['--model', dir, '--data', dataFile, '--out', out, '--device', 'cpu']), 0);
  const heads = parseHeadsFile(fs.readFileSync(path.join(out, 'heads.json'), 'utf8'), 'heads.json');
  assert.equal(heads.behaviour, 'contrast');
  assert.deepEqual(heads.targets, { a: { text: ' she', id: targets[0] }, b: { text: ' he', id: targets[1] } });
  assert.equal(heads.challenge, '');
  assert.equal(heads.counterfactual, '');
  assert.equal(heads.notes.length, 1);
  assert.match(heads.notes[0], /contrast pairs/);
  assert.deepEqual(heads.selected, [{ layer: 0, head: PLANTED }]);
  assert.deepEqual(
    heads.items.map((i) => [i.id, i.targets]),
    [
      ['mary', [' she', ' he']],
      ['anna', [' she', ' he']],
      ['lucy', [' she', ' he']],
    ],
  );
});

test('pinpoint knockout on contrast pairs: ablating the planted head removes the logit difference, random other heads do not', async () => {
  const { dir, dataFile } = plantedCheckpoint();
  const out = path.join(work, 'knockout');
  const args = ['--model', dir, '--data', dataFile, '--heads', `0.${PLANTED}`, '--out', out, '--seeds', '3', '--device', 'cpu'];
  assert.equal(await knockoutCommand(args), 0);
  const report = parseKnockoutReport(fs.readFileSync(path.join(out, 'knockout.json'), 'utf8'), 'knockout.json');
  assert.deepEqual(report.heads, [{ layer: 0, head: PLANTED }]);
  const intact = report.intact.logitDiff!;
  assert.ok(intact > 1, `the planted effect is large: ${intact}`);
  assert.equal(report.intact.contrastAccuracy, 1);
  assert.equal(report.intact.flipRate, null);
  assert.ok(Math.abs(report.zero.logitDiff!) < 0.2 * intact, `zero ablation leaves ${report.zero.logitDiff} of ${intact}`);
  assert.equal(report.random.length, 3);
  for (const r of report.random) {
    assert.ok(!r.heads.some((h) => h.layer === 0 && h.head === PLANTED), 'random heads are other heads');
    assert.ok(Math.abs(r.rates.logitDiff! - intact) < 0.2 * intact, `random heads ${JSON.stringify(r.heads)} change it to ${r.rates.logitDiff}`);
  }
  assert.ok(Math.abs(report.randomMean.logitDiff! - intact) < 0.2 * intact);
  assert.equal(typeof report.mean.logitDiff, 'number');
});

test('a file of contrast pairs is tuning data: each prompt completed with its first target, the loss on the target only', async () => {
  const { dir, dataFile, items, targets } = plantedCheckpoint();
  const tokenizer = ModelTokenizer.load(dir);
  const { examples, skipped } = readConversations(dataFile, tokenizer, { lossOn: 'last', onBadLine: 'stop' });
  assert.deepEqual(skipped, []);
  assert.equal(examples.length, items.length);
  for (const [i, example] of examples.entries()) {
    const prompt = tokenizer.encode(items[i].prompt);
    assert.deepEqual(example.ids.slice(0, prompt.length), prompt);
    assert.ok(
      example.labels.slice(0, prompt.length).every((l) => l === IGNORE_INDEX),
      'no loss on the prompt',
    );
    assert.equal(example.labels[prompt.length], targets[0], 'the first labelled token is the first token of " she"');
    assert.deepEqual(example.labels.slice(prompt.length), example.ids.slice(prompt.length));
  }
  const result = await tune(
    {
      model: { dir, device: 'cpu', dtype: 'float32' },
      data: dataFile,
      out: path.join(work, 'tuned'),
      spec: { mode: 'heads', heads: [{ layer: 0, head: PLANTED }], includeKeyValue: true },
      steps: 4,
      batchSize: 3,
      gradAccum: 1,
      adamw: { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0 },
      schedule: 'constant',
      warmupSteps: 0,
      maxGradNorm: 1,
      seed: 1,
      saveEvery: 4,
      lossOn: 'last',
      onBadLine: 'stop',
    },
    false,
    () => {},
  );
  assert.equal(result.losses.length, 4);
  assert.ok(result.losses[3] < result.losses[0], `the loss on the targets falls: ${result.losses.join(', ')}`);
  tunedDir = result.dir;
});

let tunedDir: string | undefined;

test("pinpoint compare on contrast pairs reports both models' logit differences and accuracy, in comparison.json and .csv", async () => {
  const { dir, dataFile } = plantedCheckpoint();
  assert.ok(tunedDir, 'the tuning test ran first');
  const out = path.join(work, 'compare');
  assert.equal(await compareCommand(['--base', dir, '--tuned', tunedDir, '--data', dataFile, '--out', out, '--device', 'cpu']), 0);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'comparison.json'), 'utf8')) as ComparisonReport;
  const base = report.base.metrics.contrast!.run;
  const tuned = report.tuned.metrics.contrast!.run;
  assert.equal(base.items, 3);
  assert.equal(tuned.items, 3);
  assert.notEqual(tuned.logitDiff.value, base.logitDiff.value, 'the tuned model is another model');
  assert.ok(report.kl.mean > 0 && report.kl.prompts === 6, JSON.stringify(report.kl));
  assert.deepEqual(report.changes, []);
  assert.deepEqual(report.regressions, []);
  const csv = fs.readFileSync(path.join(out, 'comparison.csv'), 'utf8').split('\n');
  for (const metric of ['accuracy', 'logitDiff', 'counterfactualLogitDiff']) {
    assert.ok(
      csv.some((row) => row.startsWith(`run,,${metric},`)),
      `comparison.csv has the run's ${metric}`,
    );
  }
  assert.ok(csv.some((row) => row.startsWith('dataset,pronouns,logitDiff,')));
});
