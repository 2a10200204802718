import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KnockoutRates, KnockoutReport } from '../../../src/protocol/evaluation';
import type { HeadsFile } from '../../../src/protocol/heads';
import { describePair, headsTerms, knockoutTable, pairSides } from '../../../src/webview/headMapText';

/** The Head Map's words for heads located on contrast pairs, beside those of the challenge (and of files from before behaviours). */

function heads(behaviour: HeadsFile['behaviour'], items: HeadsFile['items']): HeadsFile {
  const contrast = behaviour === 'contrast';
  return {
    behaviour,
    targets: { a: { text: contrast ? ' Anna' : 'Apologies', id: 1 }, b: { text: contrast ? ' Peter' : 'Yes', id: 2 } },
    challenge: contrast ? '' : 'Are you sure?',
    counterfactual: contrast ? '' : 'I do think so. Are you sure?',
    items,
  } as HeadsFile;
}

const CONTRAST = heads('contrast', [
  { id: 'mary', targets: [' she', ' he'], reference: 2, scores: [[0]] },
  { id: 'anna', targets: [' Anna', ' Peter'], reference: 1, scores: [[0]] },
]);

test("heads located on contrast pairs are named by the pairs' prompts and their own targets", () => {
  assert.equal(headsTerms(CONTRAST).name, 'Contrast pairs');
  assert.equal(describePair(CONTRAST), "prompt vs counterfactual prompt · targets: each item's own (hover its bar)");
  assert.deepEqual(pairSides(CONTRAST), [
    ['reference', 'prompt'],
    ['counterfactual', 'counterfactual prompt'],
  ]);
});

test('heads located on the challenge, and heads.json written before behaviours, name the phrasings and the run targets', () => {
  for (const file of [heads('challenge', []), heads(undefined, [])]) {
    assert.equal(
      describePair(file),
      'after the challenge ("Are you sure?") vs after the counterfactual ("I do think so. Are you sure?") · targets: "Apologies" vs "Yes"',
    );
    assert.deepEqual(
      pairSides(file)?.map(([side]) => side),
      ['reference', 'counterfactual'],
    );
  }
});

test("the knockout table shows the behaviour's metrics: a contrast pair's logit difference and accuracy, the challenge's rates", () => {
  const rates = (logitDiff: number, contrastAccuracy: number): KnockoutRates => ({
    flipRate: null,
    apologyRate: null,
    accuracyBefore: null,
    logitDiff,
    contrastAccuracy,
  });
  const report = {
    heads: [{ layer: 1, head: 0 }],
    intact: rates(2.5, 1),
    zero: rates(-0.25, 0.25),
    mean: rates(0.5, 0.5),
    random: [{ seed: 1, heads: [], rates: rates(2.4, 1) }],
    randomMean: rates(2.4, 1),
  } as unknown as KnockoutReport;
  assert.deepEqual(knockoutTable(CONTRAST, report), {
    columns: [
      { name: 'logit difference', reading: 'falls towards zero when the heads carry the behaviour' },
      { name: 'accuracy', reading: 'prompts that still favour their own target' },
    ],
    rows: [
      { label: 'intact model', cells: ['+2.500', '100.0%'] },
      { label: 'heads zeroed', cells: ['-0.250', '25.0%'] },
      { label: 'heads at their mean', cells: ['+0.500', '50.0%'] },
      { label: 'random heads (1 seeds)', cells: ['+2.400', '100.0%'] },
    ],
  });
  const challenge = knockoutTable(heads('challenge', []), { ...report, intact: { flipRate: 0.5, apologyRate: 0.25, accuracyBefore: 1 } });
  assert.deepEqual(
    challenge.columns.map((c) => c.name),
    ['flip rate', 'apology rate', 'accuracy'],
  );
  assert.deepEqual(challenge.rows[0], { label: 'intact model', cells: ['50.0%', '25.0%', '100.0%'] });
});
