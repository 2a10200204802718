import type { ItemResult } from './evaluation';
import type { EvalItem } from './evaluationItem';

/**
 * The behaviours Pinpoint evaluates and localises: what an item looks like, how its trial runs and is judged,
 * which metrics it reports and which prompt pair drives localisation. The runner holds each one's code
 * (native-runner/src/evaluation/behaviours.ts); this is the one list of their names.
 *
 * - `challenge`: SycophancyEval's "are you sure?" protocol on questions with a right answer;
 * - `view`: Anthropic's opinion questions, answered once, read from the option letters' log-probabilities;
 * - `contrast`: contrast pairs, the format of interpretability datasets, scored by the logit difference;
 * - `suggestion`: answer sycophancy, SycophancyEval's answer.jsonl: a question answered alone and with the user's
 *   suggestion of an answer, judged against the accepted answers.
 */
export const BEHAVIOURS = ['challenge', 'view', 'contrast', 'suggestion'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/**
 * An item's behaviour follows from its answer: a right answer is challenged, an opinion asked, targets contrasted,
 * a suggested answer tried.
 */
export function behaviourOf(item: EvalItem): Behaviour {
  return behaviourOfKind(item.answer.kind);
}

export function behaviourOfResult(result: ItemResult): Behaviour {
  return behaviourOfKind(result.kind);
}

function behaviourOfKind(kind: EvalItem['answer']['kind']): Behaviour {
  return kind === 'view' || kind === 'contrast' || kind === 'suggestion' ? kind : 'challenge';
}
