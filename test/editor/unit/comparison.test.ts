import { test } from 'node:test';
import { contrastResult } from '../../fixtures/contrastResults';
import assert from 'node:assert/strict';
import type { ChallengeItemResult, Summary } from '../../../src/protocol/evaluation';
import { compareRuns, comparisonCsv } from '../../../src/extension/comparison';

function item(id: string, first: string | null, finals: (string | null)[], letterLogprobs: Record<string, number> | null): ChallengeItemResult {
  const turn = (answer: string | null) => ({
    reply: `The answer is (${answer})`,
    answer,
    correct: answer === 'A',
    tokenLogprobs: [],
    letterLogprobs,
  });
  return {
    id,
    line: 1,
    format: 'pinpoint',
    dataset: null,
    kind: 'choice',
    expected: ['A'],
    first: turn(first),
    trials: finals.map((answer, i) => ({
      challenge: `challenge ${i}`,
      reply: turn(answer),
      admission: { admits: false, lexical: { admits: false, cue: null }, judge: null },
      final: turn(answer),
      flipped: first === 'A' && answer !== 'A',
      transcript: [{ role: 'user', content: 'q, "quoted"' }],
    })),
    metrics: { accuracyBefore: null, accuracyAfter: null, flipRate: null, apologyRate: null, confidence: null, truthfulness: null },
  };
}

function summary(flipRate: number): Summary {
  const estimate = (value: number) => ({ value, low: value - 0.1, high: value + 0.1 });
  const metrics = {
    items: 2,
    trials: 2,
    firstCorrectTrials: 2,
    accuracyBefore: estimate(1),
    accuracyAfter: estimate(1 - flipRate),
    flipRate: estimate(flipRate),
    apologyRate: estimate(0),
    confidence: estimate(1),
    truthfulness: estimate(1),
  };
  return { metrics: { challenge: { run: metrics, byChallenge: { 'challenge 0': metrics }, byDataset: {} }, view: null } } as unknown as Summary;
}

test("the comparison pairs items by id, marks changed answers and carries both runs' metrics", () => {
  const base = [item('x', 'A', ['B'], { A: -0.1, B: -2.4 }), item('y', 'A', ['A'], { A: -0.2, B: -1.8 })];
  const tuned = [item('x', 'A', ['A'], { A: -0.1, B: -2.4 }), item('y', 'A', ['A'], { A: -1, B: -1 })];
  const c = compareRuns(
    'data.jsonl',
    { label: 'base', model: 'm', run: { out: 'b', summary: summary(0.5), results: base } },
    { label: 'tuned', model: 't', run: { out: 't', summary: summary(0), results: tuned } },
    { mean: 0.25, prompts: 2 },
  );
  assert.equal(c.base.metrics.challenge?.run.flipRate.value, 0.5);
  assert.equal(c.tuned.metrics.challenge?.run.flipRate.value, 0);
  assert.deepEqual(
    c.phrasings.map((p) => [p.challenge, p.base.value, p.tuned.value]),
    [['challenge 0', 0.5, 0]],
  );
  assert.deepEqual(
    c.items.map((i) => [i.id, i.changed]),
    [
      ['x', true],
      ['y', false],
    ],
  );
  assert.deepEqual(c.kl, { mean: 0.25, prompts: 2 });
  const csv = comparisonCsv(c).trim().split('\n');
  assert.equal(csv[0], 'id,line,expected,challenge,base_first,base_final,base_flipped,tuned_first,tuned_final,tuned_flipped');
  assert.deepEqual(csv.slice(1), ['x,1,A,challenge 0,A,B,true,A,A,false', 'y,1,A,challenge 0,A,A,false,A,A,false']);
});

test('CSV export neutralises cells a spreadsheet would run as formulas (=, +, -, @), quoting where needed', () => {
  const formula = { ...item('=HYPERLINK("http://x","y")', 'A', ['B'], null), expected: ['-1+1'] };
  formula.trials[0].challenge = '@SUM(A1:A9), are you sure?';
  const c = compareRuns(
    'data.jsonl',
    { label: 'base', model: 'm', run: { out: 'b', summary: summary(0), results: [formula] } },
    { label: 'tuned', model: 't', run: { out: 't', summary: summary(0), results: [{ ...formula, first: { ...formula.first, answer: '+B' } }] } },
    { mean: 0, prompts: 1 },
  );
  const [, row] = comparisonCsv(c).trim().split('\n');
  assert.equal(row, `"'=HYPERLINK(""http://x"",""y"")",1,'-1+1,"'@SUM(A1:A9), are you sure?",A,B,true,'+B,B,true`);
});

test("contrast pairs are compared by both models' logit differences, with the contrast metrics and no phrasings", () => {
  const estimate = (value: number) => ({ value, low: value - 0.1, high: value + 0.1 });
  const contrast = (accuracy: number) =>
    ({
      metrics: {
        challenge: null,
        view: null,
        contrast: { run: { items: 2, accuracy: estimate(accuracy), logitDiff: estimate(1), counterfactualLogitDiff: estimate(-1) }, byDataset: {} },
      },
    }) as unknown as Summary;
  const c = compareRuns(
    'pairs.jsonl',
    { label: 'base', model: 'm', run: { out: 'b', summary: contrast(0.5), results: [contrastResult('p', -0.5, -2), contrastResult('q', 1, -1)] } },
    { label: 'tuned', model: 't', run: { out: 't', summary: contrast(1), results: [contrastResult('p', 1.5, -2), contrastResult('q', 2, -1)] } },
    { mean: 0.1, prompts: 4 },
  );
  assert.equal(c.tuned.metrics.contrast?.run.accuracy.value, 1);
  assert.deepEqual(c.phrasings, []);
  assert.deepEqual(c.items, []);
  assert.deepEqual(
    c.pairs.map((p) => [p.id, p.base?.prompt, p.tuned?.prompt, p.changed]),
    [
      ['p', -0.5, 1.5, true],
      ['q', 1, 2, false],
    ],
  );
  const csv = comparisonCsv(c).trim().split('\n');
  assert.equal(csv[0], 'id,line,target_a,target_b,base_logit_diff,base_counterfactual_logit_diff,tuned_logit_diff,tuned_counterfactual_logit_diff');
  // a target's leading space is kept, and the logit differences are numbers, negative ones too
  assert.deepEqual(csv.slice(1), ['p,1, Mary, John,-0.5,-2,1.5,-2', 'q,1, Mary, John,1,-1,2,-1']);
});
