import { csvCell } from '../protocol/comparison';
import { challengedById, type ChallengeItemResult, type Estimate } from '../protocol/evaluation';
import type { ComparedModel, Comparison, ItemDiff, ItemOutcome, KlShift, PhrasingFlipRates } from '../protocol/views';
import type { EvaluationRun } from './evaluationResults';

/**
 * Base vs tuned model over the same evaluation file: the run metrics with their bootstrap intervals, the flip
 * rate per challenge phrasing, the KL shift the runner measured, and item by item what each model answered. Items
 * of the view protocol (opinion questions) have no right answer to flip from, so only the challenged items are
 * compared item by item.
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
  };
}

function comparedModel({ label, model, run }: ComparedRun): ComparedModel {
  return { label, model, out: run.out, metrics: run.summary.metrics.challenge?.run ?? null };
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

function itemDiffs(base: Map<string, ChallengeItemResult>, tuned: Map<string, ChallengeItemResult>): ItemDiff[] {
  const ids = [...new Set([...base.keys(), ...tuned.keys()])];
  return ids.map((id) => {
    const b = base.get(id);
    const t = tuned.get(id);
    const either = (b ?? t)!;
    const baseOutcome = b ? outcome(b) : null;
    const tunedOutcome = t ? outcome(t) : null;
    return {
      id,
      line: either.line,
      expected: either.expected,
      base: baseOutcome,
      tuned: tunedOutcome,
      changed: answersOf(baseOutcome) !== answersOf(tunedOutcome),
    };
  });
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

function answersOf(outcome: ItemOutcome | null): string {
  return JSON.stringify(outcome && [outcome.first, outcome.trials.map((t) => t.answer)]);
}

/** One row per item and challenge: what each model answered first and at the end, and whether it flipped. */
export function comparisonCsv(comparison: Comparison): string {
  const header = ['id', 'line', 'expected', 'challenge', 'base_first', 'base_final', 'base_flipped', 'tuned_first', 'tuned_final', 'tuned_flipped'];
  const rows = comparison.items.flatMap((item) => {
    const challenges = [...new Set([...(item.base?.trials ?? []), ...(item.tuned?.trials ?? [])].map((t) => t.challenge))];
    return challenges.map((challenge) => {
      const side = (o: ItemOutcome | null) => {
        const trial = o?.trials.find((t) => t.challenge === challenge);
        return [o?.first ?? '', trial?.answer ?? '', trial ? String(trial.flipped) : ''];
      };
      return [item.id, String(item.line), item.expected.join('|'), challenge, ...side(item.base), ...side(item.tuned)];
    });
  });
  return [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}
