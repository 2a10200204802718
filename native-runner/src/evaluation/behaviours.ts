import { BEHAVIOURS, behaviourOf, behaviourOfResult, type Behaviour } from '../../../src/protocol/behaviours';
import type { ChallengeItemResult, ContrastItemResult, ItemResult, SuggestionItemResult, ViewItemResult } from '../../../src/protocol/evaluation';
import type { ContrastItem, EvalItem, SuggestionItem } from '../../../src/protocol/evaluationItem';
import type { ModelTokenizer } from '../checkpoint/tokenizer';
import type { Model } from '../runtime/model';
import { challengeScores, runChallengeProtocol, type ChallengeItem, type ChallengeSettings } from './challengeProtocol';
import { renderChat } from './chatPrompt';
import { contrastProblem, contrastScores, runContrastProtocol } from './contrastProtocol';
import { runSuggestionProtocol, suggestionScores } from './suggestionProtocol';
import { runViewProtocol, viewScores, type ViewItem } from './viewProtocol';

/**
 * What the evaluation engine asks of a behaviour (src/protocol/behaviours.ts names them): how its items' trials
 * run and are judged, which prompts the model reads, which numbers it reads from the model. Its metrics are
 * its section of summary.json (metrics.ts), and the prompt pair that localises it is built in
 * localisation/patchingPrompts.ts, a layer below this one.
 */
export interface EvaluationBehaviour<I extends EvalItem, R extends ItemResult> {
  /** runs and judges the items' trials, batched across the items: one result per item, in their order */
  run(model: Model, items: I[], settings: TrialSettings): Promise<R[]>;
  /**
   * The prompts the model reads before it writes anything, as token ids: a question's first prompt, a contrast
   * pair's prompt and counterfactual. The length limit applies to each, mean ablation averages the heads' outputs
   * over their positions (for a pair, over both sides, so that the mean favours neither target), and the KL shift
   * is measured on them.
   */
  prompts(tokenizer: ModelTokenizer, item: I): number[][];
  /** what fails the item before it runs, besides its length; null when it can run */
  problem(tokenizer: ModelTokenizer, item: I): string | null;
  /** the numbers read from the model into a result, by where they were read: a result is kept only when all are finite */
  scores(result: R): [string, number[]][];
}

/** One run's settings, each behaviour taking what it uses: the contrast pairs generate nothing and judge nothing. */
export type TrialSettings = ChallengeSettings;

const IMPLEMENTATIONS: {
  challenge: EvaluationBehaviour<ChallengeItem, ChallengeItemResult>;
  view: EvaluationBehaviour<ViewItem, ViewItemResult>;
  contrast: EvaluationBehaviour<ContrastItem, ContrastItemResult>;
  suggestion: EvaluationBehaviour<SuggestionItem, SuggestionItemResult>;
} = {
  challenge: {
    run: runChallengeProtocol,
    prompts: (tokenizer, item) => [renderChat(tokenizer, item.messages).ids],
    problem: () => null,
    scores: challengeScores,
  },
  view: {
    run: runViewProtocol,
    prompts: (tokenizer, item) => [renderChat(tokenizer, item.messages).ids],
    problem: () => null,
    scores: viewScores,
  },
  contrast: {
    run: runContrastProtocol,
    prompts: (tokenizer, item) => [tokenizer.encode(item.prompt), tokenizer.encode(item.counterfactual)],
    problem: contrastProblem,
    scores: contrastScores,
  },
  suggestion: {
    run: runSuggestionProtocol,
    prompts: (tokenizer, item) => [renderChat(tokenizer, item.messages).ids],
    problem: () => null,
    scores: suggestionScores,
  },
};

/** behaviourOf pairs each item (and result) with its behaviour, which is what makes these casts sound. */
function behaviourFor(behaviour: Behaviour): EvaluationBehaviour<EvalItem, ItemResult> {
  return IMPLEMENTATIONS[behaviour] as unknown as EvaluationBehaviour<EvalItem, ItemResult>;
}

/** Every item's trials, each behaviour's items batched together; the results grouped by behaviour, in BEHAVIOURS' order. */
export async function runTrials(model: Model, items: EvalItem[], settings: TrialSettings): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  for (const behaviour of BEHAVIOURS) {
    const own = items.filter((item) => behaviourOf(item) === behaviour);
    if (own.length > 0) results.push(...(await behaviourFor(behaviour).run(model, own, settings)));
  }
  return results;
}

export function promptsOf(tokenizer: ModelTokenizer, item: EvalItem): number[][] {
  return behaviourFor(behaviourOf(item)).prompts(tokenizer, item);
}

export function itemProblem(tokenizer: ModelTokenizer, item: EvalItem): string | null {
  return behaviourFor(behaviourOf(item)).problem(tokenizer, item);
}

export function resultScores(result: ItemResult): [string, number[]][] {
  return behaviourFor(behaviourOfResult(result)).scores(result);
}
