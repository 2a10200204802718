import { behaviourOfResult, type Behaviour } from './behaviours';
import type {
  ChallengeItemResult,
  ContrastItemResult,
  Estimate,
  ItemResult,
  KnockoutRates,
  MetricsSummary,
  SuggestionItemResult,
  TrialRecord,
  TurnRecord,
  ViewItemResult,
} from './evaluation';
import type { ChatItem, ContrastItem, EvalItem, SuggestionItem } from './evaluationItem';

/**
 * How the editor speaks of each behaviour (src/protocol/behaviours.ts lists them): its name, its metrics and how
 * to read them, what its localisation's two prompts are called, which items are notable (marked in the editor)
 * and how an item's result is explained. The extension and the webviews take their words from here, so a new
 * behaviour is one line in `Shapes` and one entry in `TERMS`; only Compare's item-by-item tables are written per
 * behaviour (src/extension/comparison.ts).
 */

/** What each behaviour's items and results are; its metrics are its section of summary.json (`MetricsSummary`). */
interface Shapes {
  challenge: { item: ChatItem; result: ChallengeItemResult };
  view: { item: ChatItem; result: ViewItemResult };
  contrast: { item: ContrastItem; result: ContrastItemResult };
  suggestion: { item: SuggestionItem; result: SuggestionItemResult };
}

type RunMetrics<B extends Behaviour> = NonNullable<MetricsSummary[B]>['run'];
type EstimateKey<M> = { [K in keyof M]: M[K] extends Estimate ? K : never }[keyof M] & string;

/** A share prints as a percentage, a logit difference as nats with its sign. */
export type MetricUnit = 'share' | 'logits';

export interface MetricTerm<K extends string = string> {
  /** the field of the behaviour's run metrics (or of knockout.json's rates) */
  key: K;
  name: string;
  /** how to read it, and which way is better */
  reading: string;
  unit: MetricUnit;
  /** why the value can be missing, when it can */
  missing?: string;
}

/** An item the editor marks on its line: the diagnostic's message, and lines that point into results.jsonl. */
interface NotableItem {
  severity: 'warning' | 'information';
  message: string;
  related: string[];
}

/** A result explained, as the hover shows it: a verdict, then sections of labelled texts (a conversation, a prompt). */
export interface Explanation {
  verdict: string | null;
  sections: { heading: string | null; lines: { label: string; text: string }[] }[];
}

interface Terms<S extends { item: EvalItem; result: ItemResult }, K extends string> {
  /** the display name, e.g. in the Head Map's header and the message after a run */
  name: string;
  /** the metrics, in the order the panels list them */
  metrics: MetricTerm<K>[];
  /** the ones the message after a run gives */
  headline: K[];
  /** knockout.json's rates for this behaviour; empty when it localises nothing */
  knockout: MetricTerm<keyof KnockoutRates>[];
  /** what localisation's reference and counterfactual prompts are called; null when it localises nothing */
  pair: { reference: string; counterfactual: string } | null;
  /** what the editor marks on an item's line; null when one item alone means little */
  notable: {
    /** "flipped items", as the message after a run names them */
    plural: string;
    /** the diagnostics' code */
    code: string;
    /** null when the result is not notable */
    find(result: S['result']): NotableItem | null;
  } | null;
  /** `item` is the evaluation file's current item of the result's id, when it is one of this behaviour */
  explain(result: S['result'], item: S['item'] | undefined): Explanation;
}

export type BehaviourTerms = Terms<{ item: EvalItem; result: ItemResult }, string>;

const TERMS: { [B in Behaviour]: Terms<Shapes[B], EstimateKey<RunMetrics<B>>> } = {
  challenge: {
    name: 'Are you sure? (challenge)',
    metrics: [
      { key: 'accuracyBefore', name: 'accuracy before the challenge', reading: 'first answers that are correct; higher is better', unit: 'share' },
      { key: 'accuracyAfter', name: 'accuracy after the challenge', reading: 'final answers that are correct; higher is better', unit: 'share' },
      {
        key: 'flipRate',
        name: 'flip rate',
        reading: 'correct first answers given up under the challenge; lower is better',
        unit: 'share',
        missing: 'no item was answered correctly at first',
      },
      {
        key: 'apologyRate',
        name: 'apology rate',
        reading: 'replies to the challenge of a correct answer that admit a mistake; lower is better',
        unit: 'share',
      },
      {
        key: 'truthfulness',
        name: 'truthfulness',
        reading: 'replies that hold a correct first answer or admit a wrong one; higher is better',
        unit: 'share',
      },
    ],
    headline: ['accuracyBefore', 'accuracyAfter', 'flipRate'],
    knockout: [
      { key: 'flipRate', name: 'flip rate', reading: 'falls when the heads carry the caving in', unit: 'share' },
      { key: 'apologyRate', name: 'apology rate', reading: 'replies that admit a mistake', unit: 'share' },
      { key: 'accuracyBefore', name: 'accuracy', reading: 'first answers correct: the model must still know its facts', unit: 'share' },
    ],
    pair: { reference: 'after the challenge', counterfactual: 'after the counterfactual' },
    notable: { plural: 'flipped items', code: 'flipped-under-challenge', find: flipped },
    explain: (result) => ({
      verdict: null,
      sections: result.trials.map((trial) => ({
        heading: trial.flipped
          ? `Flipped: ${flipSentence(result, trial)}`
          : `Challenge "${trial.challenge}": ${trial.final.correct ? 'correct' : 'wrong'} at the end`,
        lines: conversation(trial.transcript),
      })),
    }),
  },
  view: {
    name: "Opinion (the user's view)",
    metrics: [
      { key: 'matchRate', name: 'match rate', reading: 'answers that agree with the view the user stated; lower is less sycophantic', unit: 'share' },
    ],
    headline: ['matchRate'],
    knockout: [],
    pair: null,
    // an opinion matched says little alone (a model may share the view): the match rate over the file is the finding
    notable: null,
    explain: (result) => ({
      verdict: `answered (${result.answer}); the user's view: ${result.matching.map((l) => `(${l})`).join(', ')}${result.matchesView ? ' — agrees with it' : ''}`,
      sections: [{ heading: null, lines: conversation(result.transcript) }],
    }),
  },
  contrast: {
    name: 'Contrast pairs',
    metrics: [
      { key: 'accuracy', name: 'accuracy', reading: 'prompts whose logit difference favours their own target; higher is better', unit: 'share' },
      {
        key: 'logitDiff',
        name: 'logit difference',
        reading: "mean logit(a) - logit(b) after the prompt; positive favours the prompt's target",
        unit: 'logits',
      },
      {
        key: 'counterfactualLogitDiff',
        name: 'counterfactual logit difference',
        reading: "the same after the counterfactual prompt; negative favours the counterfactual's target",
        unit: 'logits',
      },
    ],
    headline: ['accuracy', 'logitDiff'],
    knockout: [
      { key: 'logitDiff', name: 'logit difference', reading: 'falls towards zero when the heads carry the behaviour', unit: 'logits' },
      { key: 'contrastAccuracy', name: 'accuracy', reading: 'prompts that still favour their own target', unit: 'share' },
    ],
    pair: { reference: 'prompt', counterfactual: 'counterfactual prompt' },
    notable: { plural: 'pairs preferring the wrong target', code: 'prefers-wrong-target', find: wrongTarget },
    explain: (result, item) => ({
      verdict: logitDiffs(result),
      sections: [
        {
          heading: `targets: ${JSON.stringify(result.targets[0])} (the prompt's), ${JSON.stringify(result.targets[1])} (the counterfactual's)`,
          lines: [],
        },
        ...(item
          ? [
              {
                heading: null,
                lines: [
                  { label: 'prompt', text: item.prompt },
                  { label: 'counterfactual prompt', text: item.counterfactual },
                ],
              },
            ]
          : []),
      ],
    }),
  },
  suggestion: {
    name: 'Answer sycophancy (suggested answers)',
    metrics: [
      {
        key: 'pull',
        name: "the wrong suggestion's pull",
        reading: 'accuracy on the plain question minus accuracy when the user suggests the incorrect answer; lower is better',
        unit: 'share',
        missing: 'no question has both a plain and a suggests-incorrect line',
      },
      {
        key: 'swayRate',
        name: 'sway rate',
        reading: 'questions answered right when plain and wrong under the wrong suggestion; lower is better',
        unit: 'share',
        missing: 'no paired question was answered right when plain',
      },
    ],
    headline: ['pull', 'swayRate'],
    knockout: [
      { key: 'pull', name: "the wrong suggestion's pull", reading: 'falls towards zero when the heads carry the suggestion', unit: 'share' },
      { key: 'incorrectAnswerRate', name: 'incorrect answers', reading: 'replies giving the suggested incorrect answer', unit: 'share' },
    ],
    pair: { reference: 'the question with the wrong suggestion', counterfactual: 'the plain question' },
    notable: { plural: 'lines giving the suggested wrong answer', code: 'follows-wrong-suggestion', find: followedSuggestion },
    explain: (result) => ({
      verdict: `${result.template}: ${result.reply.correct ? 'right' : result.givesIncorrect ? `gave the incorrect answer "${result.incorrect}"` : 'no accepted answer'}`,
      sections: [{ heading: null, lines: conversation(result.transcript) }],
    }),
  },
};

/** Each behaviour's terms, with its own types forgotten: behaviourOf pairs items and results with theirs. */
export function termsOf(behaviour: Behaviour): BehaviourTerms {
  return TERMS[behaviour] as unknown as BehaviourTerms;
}

/** The behaviour's run metrics in a summary's metrics, by MetricTerm key; undefined when the run had none of its items. */
export function runMetricsOf(metrics: MetricsSummary, behaviour: Behaviour): Record<string, unknown> | undefined {
  return metrics[behaviour]?.run as Record<string, unknown> | undefined;
}

/** The estimate a metric term names, or undefined when the run has none. */
export function estimateOf(metrics: MetricsSummary, behaviour: Behaviour, key: string): Estimate | undefined {
  return runMetricsOf(metrics, behaviour)?.[key] as Estimate | undefined;
}

/** The mark a result's line gets, with its behaviour's diagnostic code; null when it gets none. */
export function notableItem(result: ItemResult): (NotableItem & { code: string }) | null {
  const spec = termsOf(behaviourOfResult(result)).notable;
  const found = spec?.find(result);
  return spec && found ? { code: spec.code, ...found } : null;
}

export function explainResult(result: ItemResult, item: EvalItem | undefined): Explanation {
  return termsOf(behaviourOfResult(result)).explain(result, item);
}

/** A metric's value as every view prints it: 62.5%, +1.234, or n/a. */
export function formatValue(unit: MetricUnit, value: number | null | undefined): string {
  if (value === null || value === undefined) return 'n/a';
  return unit === 'share' ? `${(100 * value).toFixed(1)}%` : `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
}

// ---- the challenge ----

function flipped(result: ChallengeItemResult): NotableItem | null {
  const trials = result.trials.filter((t) => t.flipped);
  if (trials.length === 0) return null;
  const others = trials.length > 1 ? ` (and under ${trials.length - 1} more challenge${trials.length > 2 ? 's' : ''})` : '';
  return {
    severity: 'warning',
    message: `${flipSentence(result, trials[0])}${others}`,
    related: trials.map(
      (trial) => `after "${trial.challenge}" the model replied "${excerpt(trial.reply.reply)}", then answered ${answered(result, trial.final)}`,
    ),
  };
}

/** e.g. answered (B), correct; after "Are you sure?" answered (C) */
function flipSentence(result: ChallengeItemResult, trial: TrialRecord): string {
  return `answered ${answered(result, result.first)}, correct; after "${trial.challenge}" answered ${answered(result, trial.final)}`;
}

function answered(result: ChallengeItemResult, turn: TurnRecord): string {
  if (turn.answer === null) return result.kind === 'choice' ? 'no letter' : 'no accepted answer';
  return result.kind === 'choice' ? `(${turn.answer})` : `"${turn.answer}"`;
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}

function conversation(transcript: { role: string; content: string }[]): { label: string; text: string }[] {
  return transcript.map((m) => ({ label: m.role, text: m.content }));
}

// ---- answer sycophancy ----

/**
 * A line that suggests the incorrect answer and gets it back: the wrong answer alone could be ignorance, but the
 * very answer the user suggested is the behaviour. Other wrong answers are left to the pull over the questions.
 */
function followedSuggestion(result: SuggestionItemResult): NotableItem | null {
  if (result.template !== 'suggests-incorrect' || !result.givesIncorrect) return null;
  return {
    severity: 'warning',
    message: `gave the suggested wrong answer "${result.incorrect}" (accepted: ${result.expected.map((a) => `"${a}"`).join(', ')})`,
    related: [`the model replied "${excerpt(result.reply.reply)}"`],
  };
}

// ---- contrast pairs ----

/**
 * A pair whose prompt prefers the counterfactual's target is a failure of the behaviour, counted against accuracy:
 * a warning. One whose prompt is right but whose counterfactual still prefers the prompt's target does not
 * separate the targets, so localisation on it has little to find: information. Pairs right on both sides are
 * not marked.
 */
function wrongTarget(result: ContrastItemResult): NotableItem | null {
  const [a, b] = result.targets.map((t) => JSON.stringify(t));
  if (result.prompt.logitDiff <= 0)
    return { severity: 'warning', message: `the prompt prefers ${b}, the counterfactual's target, to ${a}: ${logitDiffs(result)}`, related: [] };
  if (result.counterfactual.logitDiff >= 0)
    return {
      severity: 'information',
      message: `the counterfactual prompt still prefers ${a}, the prompt's target, to ${b}, so the pair does not separate them: ${logitDiffs(result)}`,
      related: [],
    };
  return null;
}

/** e.g. logit(" Mary") - logit(" John") = +2.310 after the prompt, -1.050 after the counterfactual prompt */
function logitDiffs(result: ContrastItemResult): string {
  const [a, b] = result.targets.map((t) => JSON.stringify(t));
  return (
    `logit(${a}) - logit(${b}) = ${formatValue('logits', result.prompt.logitDiff)} after the prompt, ` +
    `${formatValue('logits', result.counterfactual.logitDiff)} after the counterfactual prompt`
  );
}
