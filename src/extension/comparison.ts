import { csvCell } from '../protocol/comparison';
import { challengedById, type ChallengeItemResult, type ContrastItemResult, type Estimate, type ItemResult } from '../protocol/evaluation';
import type { ComparedModel, Comparison, ItemDiff, ItemOutcome, KlShift, PairDiff, PairOutcome, PhrasingFlipRates } from '../protocol/views';
import type { EvaluationRun } from './evaluationResults';

/**
 * Base vs tuned model over the same evaluation file: each behaviour's run metrics with their bootstrap intervals,
 * the flip rate per challenge phrasing, the KL shift the runner measured, and item by item what each model
 * answered (a challenged question) or how far it preferred its target (a contrast pair). Opinion questions have no
 * right answer to flip from: their match rate is the finding, so they are compared by the metric alone.
 */

export interface ComparedRun {
  label: string;
  model: string;
  run: EvaluationRun;
}

const NO_ESTIMATE: Estimate = { value: null, low: null, high: null };

export function compareRuns(data: string, base: ComparedRun, tuned: ComparedRun, kl: KlShift): Comparison {
  const baseItems = challengedById(base.run.results);
  const tunedItems = challengedById(tuned.run.results);
  return {
    data,
    base: comparedModel(base),
    tuned: comparedModel(tuned),
    phrasings: phrasingFlipRates(base, tuned),
    kl,
    items: itemDiffs(baseItems, tunedItems),
    pairs: pairDiffs(contrastById(base.run.results), contrastById(tuned.run.results)),
  };
}

function comparedModel({ label, model, run }: ComparedRun): ComparedModel {
  return { label, model, out: run.out, metrics: run.summary.metrics };
}

function phrasingFlipRates(base: ComparedRun, tuned: ComparedRun): PhrasingFlipRates[] {
  const byChallenge = (run: ComparedRun) => run.run.summary.metrics.challenge?.byChallenge ?? {};
  const challenges = [...new Set([...Object.keys(byChallenge(base)), ...Object.keys(byChallenge(tuned))])];
  return challenges.map((challenge) => ({
    challenge,
    base: byChallenge(base)[challenge]?.flipRate ?? NO_ESTIMATE,
    tuned: byChallenge(tuned)[challenge]?.flipRate ?? NO_ESTIMATE,
  }));
}

/** Every id either model holds, with each side's outcome (null where it lacks the item) and whether they differ. */
function diffById<R, O>(base: Map<string, R>, tuned: Map<string, R>, outcomeOf: (result: R) => O, key: (outcome: O | null) => unknown) {
  return [...new Set([...base.keys(), ...tuned.keys()])].map((id) => {
    const b = base.get(id);
    const t = tuned.get(id);
    const baseOutcome = b === undefined ? null : outcomeOf(b);
    const tunedOutcome = t === undefined ? null : outcomeOf(t);
    return { id, result: (b ?? t)!, base: baseOutcome, tuned: tunedOutcome, changed: key(baseOutcome) !== key(tunedOutcome) };
  });
}

function itemDiffs(base: Map<string, ChallengeItemResult>, tuned: Map<string, ChallengeItemResult>): ItemDiff[] {
  return diffById(base, tuned, outcome, answersOf).map((d) => ({
    id: d.id,
    line: d.result.line,
    expected: d.result.expected,
    base: d.base,
    tuned: d.tuned,
    changed: d.changed,
  }));
}

function outcome(result: ChallengeItemResult): ItemOutcome {
  return {
    first: result.first.answer,
    firstCorrect: result.first.correct,
    trials: result.trials.map((t) => ({
      challenge: t.challenge,
      answer: t.final.answer,
      correct: t.final.correct,
      flipped: t.flipped,
      transcript: t.transcript,
    })),
  };
}

function contrastById(results: ItemResult[]): Map<string, ContrastItemResult> {
  return new Map(results.flatMap((r) => (r.kind === 'contrast' ? [[r.id, r] as const] : [])));
}

function pairDiffs(base: Map<string, ContrastItemResult>, tuned: Map<string, ContrastItemResult>): PairDiff[] {
  return diffById(base, tuned, pairOutcome, (o) => o?.prefersTarget).map((d) => ({
    id: d.id,
    line: d.result.line,
    targets: d.result.targets,
    base: d.base,
    tuned: d.tuned,
    changed: d.changed,
  }));
}

function pairOutcome(result: ContrastItemResult): PairOutcome {
  return { prompt: result.prompt.logitDiff, counterfactual: result.counterfactual.logitDiff, prefersTarget: result.prefersTarget };
}

function answersOf(outcome: ItemOutcome | null): string {
  return JSON.stringify(outcome && [outcome.first, outcome.trials.map((t) => t.answer)]);
}

/** The items' table of the comparison: contrast pairs when the file holds pairs, else the challenged questions. */
export function comparisonCsv(comparison: Comparison): string {
  const rows = comparison.pairs.length > 0 ? pairRows(comparison.pairs) : challengeRows(comparison.items);
  // numbers are written as they are: a negative one is no formula, and a spreadsheet should read it as a number
  return rows.map((row) => row.map((cell) => (typeof cell === 'number' ? String(cell) : csvCell(cell))).join(',')).join('\n') + '\n';
}

/** One row per item and challenge: what each model answered first and at the end, and whether it flipped. */
function challengeRows(items: ItemDiff[]): string[][] {
  const header = ['id', 'line', 'expected', 'challenge', 'base_first', 'base_final', 'base_flipped', 'tuned_first', 'tuned_final', 'tuned_flipped'];
  const rows = items.flatMap((item) => {
    const challenges = [...new Set([...(item.base?.trials ?? []), ...(item.tuned?.trials ?? [])].map((t) => t.challenge))];
    return challenges.map((challenge) => {
      const side = (o: ItemOutcome | null) => {
        const trial = o?.trials.find((t) => t.challenge === challenge);
        return [o?.first ?? '', trial?.answer ?? '', trial ? String(trial.flipped) : ''];
      };
      return [item.id, String(item.line), item.expected.join('|'), challenge, ...side(item.base), ...side(item.tuned)];
    });
  });
  return [header, ...rows];
}

/** One row per pair: each model's logit differences after the prompt and after the counterfactual. */
function pairRows(pairs: PairDiff[]): (string | number)[][] {
  const header = [
    'id',
    'line',
    'target_a',
    'target_b',
    'base_logit_diff',
    'base_counterfactual_logit_diff',
    'tuned_logit_diff',
    'tuned_counterfactual_logit_diff',
  ];
  const side = (o: PairOutcome | null) => (o ? [o.prompt, o.counterfactual] : ['', '']);
  return [header, ...pairs.map((p) => [p.id, p.line, ...p.targets, ...side(p.base), ...side(p.tuned)])];
}
