import fs from 'node:fs';
import path from 'node:path';
import type { KnockoutReport, Summary } from '../../../src/protocol/evaluation';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import { headList, type HeadRef, type HeadsFile } from '../../../src/protocol/heads';
import type { OrganismCard } from '../../../src/protocol/organism';
import { meanOf, RecordedLogits } from '../comparison/distributionShift';
import { readEvaluationFile, type EvaluationFile } from '../evaluation/evaluationFile';
import { runEvaluation } from '../evaluation/runEvaluation';
import { knockout, randomHeads, writeKnockoutReport } from '../localisation/knockout';
import { locate, writeHeadsFile } from '../localisation/locate';
import { DEFAULT_CHALLENGE, DEFAULT_COUNTERFACTUAL, DEFAULT_TARGETS } from '../localisation/patchingPrompts';
import { writeFileAtomic } from '../model/weightFile';
import { Model } from '../runtime/model';
import { ADAMW_DEFAULTS } from '../training/adamw';
import type { TuneSpec } from '../training/parameters';
import { labelled } from '../training/conversations';
import { IGNORE_INDEX, type Example } from '../training/lossBatch';
import { tune } from '../training/tuneRun';
import { neutralConversations, writeShippedFiles } from './demoData';
import { demoClaims, type Claim } from './claims';
import { renderReport } from './report';
import { readOrganismCard } from './buildOrganism';
import { HELDOUT_CHALLENGES, TRAIN_CHALLENGES } from './world';

/**
 * The whole loop on the embedded organism, as the paper runs it: evaluate -> locate heads -> knockout check ->
 * pinpoint-tune the top heads on "insist" and "revise" data -> full fine-tuning (SFT) on the same data, steps and
 * hyper-parameters -> compare. The organism's second behaviour, answer sycophancy, runs the same loop on the
 * world's answer.jsonl (locate, knockout, SPT of its own heads), and every tuned model is evaluated on both
 * behaviours, so that the report shows each behaviour's heads are its own and tuning one leaves the other. Every
 * stage writes its files under `out`; the result is report.json, a self-contained report.html, and one JSON line
 * of headline numbers.
 */

export interface DemoOptions {
  model: string;
  /** what the report calls the model: its folder's name */
  name: string;
  out: string;
  items: number;
  tuneSteps: number;
  tuneExamples: number;
  batch: number;
  lr: number;
  knockoutSeeds: number;
  log: (line: string) => void;
}

export interface Headline {
  base_flip_rate: number;
  spt_flip_rate: number;
  sft_flip_rate: number;
  base_accuracy: number;
  spt_accuracy: number;
  sft_accuracy: number;
  /** KL from base on the answers of neutral conversations, nats per token */
  spt_kl: number;
  sft_kl: number;
  /** the same over every position */
  spt_kl_all_positions: number;
  sft_kl_all_positions: number;
  heldout_base_flip_rate: number;
  heldout_spt_flip_rate: number;
  /** SPT of as many random heads instead of the located ones */
  random_spt_flip_rate: number;
  heldout_random_spt_flip_rate: number;
  random_spt_kl: number;
  random_spt_kl_all_positions: number;
  tuned_heads: number;
  total_heads: number;
  knockout_flip_rate: number;
  random_knockout_flip_rate: number;
  /** answer sycophancy: how often a suggested wrong answer is given, per model, and accuracy on the plain question */
  base_follow_rate: number;
  spt_follow_rate: number;
  sft_follow_rate: number;
  base_plain_accuracy: number;
  /** SPT of the heads located on answer.jsonl, with its own data: both behaviours after it */
  spt_suggestion_follow_rate: number;
  spt_suggestion_plain_accuracy: number;
  spt_suggestion_flip_rate: number;
  spt_suggestion_accuracy: number;
  spt_suggestion_kl: number;
  spt_suggestion_kl_all_positions: number;
  knockout_follow_rate: number;
  random_knockout_follow_rate: number;
  seconds: number;
}

export interface ModelReport {
  summary: Summary;
  flipRate: number;
  heldoutFlipRate: number;
  accuracy: number;
  /** flip rate per challenge phrasing */
  byChallenge: Record<string, number>;
  /** answer sycophancy on the world's answer.jsonl */
  answers: Summary;
  /** the incorrect-answer rate under a wrong suggestion */
  followRate: number;
  /** accuracy on the plain question */
  plainAccuracy: number;
}

/** The second behaviour's localisation and knockout, on the world's answer.jsonl. */
export interface SuggestionLoop {
  heads: HeadsFile;
  concentration: number;
  knockout: KnockoutReport;
}

/** One model's run of the loop. */
export interface DemoReport {
  name: string;
  /** how the organism was built; null for a model without organism.json */
  card: OrganismCard | null;
  headline: Headline;
  claims: Claim[];
  /** the top 4% of heads' share of the total |path-patching effect| */
  concentration: number;
  heads: HeadsFile;
  knockout: KnockoutReport;
  models: { base: ModelReport; spt: ModelReport; sptRandom: ModelReport; sft: ModelReport; sptSuggestion: ModelReport };
  suggestion: SuggestionLoop;
  /** the heads of the SPT control */
  randomTuned: HeadRef[];
  trainChallenges: string[];
  heldoutChallenges: string[];
  provider: string;
}

/** report.json: every model the demo ran, side by side. */
export interface DemoSet {
  organisms: DemoReport[];
  seconds: number;
}

export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const started = Date.now();
  const files = writeDemoFiles(o);
  const base = Model.load(o.model, { device: 'cpu' });
  try {
    o.log('1/9 evaluating the organism on both behaviours');
    const baseReport = await evaluate(base, o.model, files, path.join(o.out, 'eval-base'), o);
    o.log('2/9 locating the heads that make it cave (path patching)');
    const heads = await locateHeads(base, files.challenge, o.out, o);
    o.log('3/9 knocking them out, and as many random heads');
    const knockoutReport = await knockOut(base, files.challenge, heads, path.join(o.out, 'knockout'), o);
    writeKnockoutReport(o.out, knockoutReport);
    o.log('4/9 answer sycophancy: locating the heads that follow a suggestion, and knocking them out');
    const suggestionDir = path.join(o.out, 'suggestion');
    const suggestionHeads = await locateHeads(base, files.answers, suggestionDir, o);
    const suggestion: SuggestionLoop = {
      heads: suggestionHeads,
      concentration: concentration(suggestionHeads),
      knockout: await knockOut(base, files.answers, suggestionHeads, path.join(suggestionDir, 'knockout'), o),
    };
    const { spt, sptRandom, randomTuned, sft, sptSuggestion } = await tuneFourWays(base, heads, suggestionHeads, files, o);
    o.log('9/9 comparing');
    const models = { base: baseReport, spt: spt.report, sptRandom: sptRandom.report, sft: sft.report, sptSuggestion: sptSuggestion.report };
    const headline: Headline = {
      ...challengeHeadline(models, { spt, sptRandom, sft }, heads, knockoutReport),
      ...suggestionHeadline(models, sptSuggestion, suggestion.knockout),
      seconds: (Date.now() - started) / 1000,
    };
    const card = readOrganismCard(o.model);
    return {
      name: o.name,
      card,
      headline,
      claims: demoClaims(headline, knockoutReport.intact, suggestion.knockout.intact, card?.implantedHeads ?? {}, {
        challenge: heads,
        suggestion: suggestionHeads,
      }),
      concentration: concentration(heads),
      heads,
      knockout: knockoutReport,
      models,
      suggestion,
      randomTuned,
      trainChallenges: TRAIN_CHALLENGES,
      heldoutChallenges: HELDOUT_CHALLENGES,
      provider: baseReport.summary.device.provider,
    };
  } finally {
    await base.dispose();
  }
}

type Models = DemoReport['models'];
type Shift = { kl: number; klAllPositions: number };

function challengeHeadline(m: Models, shifts: Record<'spt' | 'sptRandom' | 'sft', Shift>, heads: HeadsFile, k: KnockoutReport) {
  return {
    base_flip_rate: m.base.flipRate,
    spt_flip_rate: m.spt.flipRate,
    sft_flip_rate: m.sft.flipRate,
    base_accuracy: m.base.accuracy,
    spt_accuracy: m.spt.accuracy,
    sft_accuracy: m.sft.accuracy,
    spt_kl: shifts.spt.kl,
    sft_kl: shifts.sft.kl,
    spt_kl_all_positions: shifts.spt.klAllPositions,
    sft_kl_all_positions: shifts.sft.klAllPositions,
    heldout_base_flip_rate: m.base.heldoutFlipRate,
    heldout_spt_flip_rate: m.spt.heldoutFlipRate,
    random_spt_flip_rate: m.sptRandom.flipRate,
    heldout_random_spt_flip_rate: m.sptRandom.heldoutFlipRate,
    random_spt_kl: shifts.sptRandom.kl,
    random_spt_kl_all_positions: shifts.sptRandom.klAllPositions,
    tuned_heads: heads.selected.length,
    total_heads: heads.layers * heads.heads,
    knockout_flip_rate: k.zero.flipRate ?? NaN,
    random_knockout_flip_rate: k.randomMean.flipRate ?? NaN,
  };
}

function suggestionHeadline(m: Models, shift: Shift, k: KnockoutReport) {
  return {
    base_follow_rate: m.base.followRate,
    spt_follow_rate: m.spt.followRate,
    sft_follow_rate: m.sft.followRate,
    base_plain_accuracy: m.base.plainAccuracy,
    spt_suggestion_follow_rate: m.sptSuggestion.followRate,
    spt_suggestion_plain_accuracy: m.sptSuggestion.plainAccuracy,
    spt_suggestion_flip_rate: m.sptSuggestion.flipRate,
    spt_suggestion_accuracy: m.sptSuggestion.accuracy,
    spt_suggestion_kl: shift.kl,
    spt_suggestion_kl_all_positions: shift.klAllPositions,
    knockout_follow_rate: k.zero.incorrectAnswerRate ?? NaN,
    random_knockout_follow_rate: k.randomMean.incorrectAnswerRate ?? NaN,
  };
}

/** The demo's evaluation files and tuning data for both behaviours, written under `out` and read back. */
interface DemoFiles {
  challenge: EvaluationFile;
  answers: EvaluationFile;
  tune: string;
  tuneSuggestion: string;
}

/** The files Open Demo ships beside the organism, written under `out`: the demo runs on what the editor opens. */
function writeDemoFiles(o: DemoOptions): DemoFiles {
  fs.mkdirSync(o.out, { recursive: true });
  writeShippedFiles(o.out, o.items, o.tuneExamples);
  const file = (name: string) => path.join(o.out, name);
  const { evaluation, training, answers, answerTraining } = DEMO_RECIPE.files;
  return {
    challenge: readEvaluationFile(file(evaluation)),
    answers: readEvaluationFile(file(answers)),
    tune: file(training),
    tuneSuggestion: file(answerTraining),
  };
}

/** Path patching at the last position, into `<out>/heads.json`: the challenge's default pair, or answer.jsonl's own. */
async function locateHeads(model: Model, data: EvaluationFile, out: string, o: DemoOptions): Promise<HeadsFile> {
  const heads = await locate(
    model,
    data.items,
    {
      method: 'path',
      positions: 'last',
      metric: 'logit_diff',
      challenge: DEFAULT_CHALLENGE,
      counterfactual: DEFAULT_COUNTERFACTUAL,
      targets: DEFAULT_TARGETS,
    },
    () => {},
  );
  fs.mkdirSync(out, { recursive: true });
  writeHeadsFile(out, heads);
  o.log(`   top ${heads.topK} of ${heads.layers * heads.heads}: ${headList(heads.selected)}`);
  return heads;
}

function knockOut(model: Model, data: EvaluationFile, heads: HeadsFile, outDir: string, o: DemoOptions): Promise<KnockoutReport> {
  return knockout({
    model,
    modelDir: o.model,
    data,
    items: data.items,
    heads: heads.selected,
    outDir,
    challenges: [DEFAULT_CHALLENGE],
    seeds: Array.from({ length: o.knockoutSeeds }, (_, i) => i + 1),
    batchSize: o.batch,
    maxNewTokens: DEMO_RECIPE.maxNewTokens,
  });
}

/** The loop on each model in turn, into `<out>/<name>/`, and report.json and report.html with them side by side. */
export async function runDemos(models: string[], o: Omit<DemoOptions, 'model' | 'name'>): Promise<DemoSet> {
  const started = Date.now();
  const organisms: DemoReport[] = [];
  for (const model of models) {
    const name = path.basename(path.resolve(model));
    o.log(`== ${name}`);
    organisms.push(await runDemo({ ...o, model, name, out: path.join(o.out, name) }));
  }
  const set: DemoSet = { organisms, seconds: (Date.now() - started) / 1000 };
  writeFileAtomic(path.join(o.out, 'report.json'), JSON.stringify(set, null, 1));
  writeFileAtomic(path.join(o.out, 'report.html'), renderReport(set));
  return set;
}

/**
 * How concentrated the effect is: the largest 4% of heads' share (rounded, at least one head) of the sum of every head's
 * |score|. An implanted mechanism in 2 of 48 heads gives nearly 1; an effect spread evenly, 0.04.
 */
export function concentration(heads: HeadsFile): number {
  const magnitudes = heads.scores
    .flat()
    .map(Math.abs)
    .sort((a, b) => b - a);
  const top = Math.max(1, Math.round(0.04 * magnitudes.length));
  const total = magnitudes.reduce((a, b) => a + b, 0);
  return total > 0 ? magnitudes.slice(0, top).reduce((a, b) => a + b, 0) / total : NaN;
}

/** The challenge protocol with every phrasing, training and held-out, and answer.jsonl. */
async function evaluate(model: Model, modelDir: string, files: DemoFiles, outDir: string, o: DemoOptions): Promise<ModelReport> {
  const run = (data: EvaluationFile, dir: string) =>
    runEvaluation({
      model,
      modelDir,
      judge: null,
      data,
      items: data.items,
      outDir: dir,
      challenges: [...TRAIN_CHALLENGES, ...HELDOUT_CHALLENGES],
      maxNewTokens: DEMO_RECIPE.maxNewTokens,
      batchSize: o.batch,
    });
  const summary = await run(files.challenge, outDir);
  const answers = await run(files.answers, path.join(outDir, 'answers'));
  const metrics = summary.metrics.challenge!;
  const byChallenge = Object.fromEntries(Object.entries(metrics.byChallenge).map(([p, m]) => [p, m.flipRate.value ?? NaN]));
  const mean = (phrasings: string[]) => phrasings.reduce((s, p) => s + byChallenge[p], 0) / phrasings.length;
  const templates = answers.metrics.suggestion!.run.byTemplate;
  return {
    summary,
    flipRate: mean(TRAIN_CHALLENGES),
    heldoutFlipRate: mean(HELDOUT_CHALLENGES),
    accuracy: metrics.run.accuracyBefore.value ?? NaN,
    byChallenge,
    answers,
    followRate: templates['suggests-incorrect']?.incorrectAnswerRate.value ?? NaN,
    plainAccuracy: templates.plain?.accuracy.value ?? NaN,
  };
}

/**
 * SPT of the located heads, the same of as many random heads (the control SPT's success needs, drawn as knockout's
 * first random draw is), SFT, and SPT of the heads located on answer.jsonl with its own data, each evaluated and
 * measured against the base model's neutral logits, recorded once; the base model's session is released meanwhile.
 */
async function tuneFourWays(base: Model, heads: HeadsFile, suggestionHeads: HeadsFile, files: DemoFiles, o: DemoOptions) {
  const shift = await NeutralShift.record(base);
  await base.dispose();
  const kv = DEMO_RECIPE.tuning.includeKeyValue;
  const ofHeads = (selected: HeadRef[]): TuneSpec => ({ mode: 'heads', heads: selected, includeKeyValue: kv });
  const run = (name: string, spec: TuneSpec, data: string) => tuneAndEvaluate(shift, name, spec, data, files, o);
  try {
    o.log('5/9 pinpoint tuning of the located heads (SPT)');
    const spt = await run('spt', ofHeads(heads.selected), files.tune);
    const randomTuned = randomHeads(base, heads.selected, 1);
    o.log(`6/9 the same tuning of as many random heads (${headList(randomTuned)})`);
    const sptRandom = await run('spt-random', ofHeads(randomTuned), files.tune);
    o.log('7/9 full fine-tuning on the same data and steps (SFT)');
    const sft = await run('sft', { mode: 'full', heads: [], includeKeyValue: false }, files.tune);
    o.log('8/9 pinpoint tuning of the answer-sycophancy heads on honest replies to suggestions');
    const sptSuggestion = await run('spt-suggestion', ofHeads(suggestionHeads.selected), files.tuneSuggestion);
    return { spt, sptRandom, randomTuned, sft, sptSuggestion };
  } finally {
    shift.remove();
  }
}

/** Tunes `spec`'s weights on `tuneFile` into `<out>/<name>`, then evaluates the result and its shift from base. */
async function tuneAndEvaluate(shift: NeutralShift, name: string, spec: TuneSpec, tuneFile: string, files: DemoFiles, o: DemoOptions) {
  const run = await tune(
    {
      model: { dir: o.model, device: 'cpu', dtype: 'float32' },
      data: tuneFile,
      out: path.join(o.out, name),
      spec,
      steps: o.tuneSteps,
      batchSize: o.batch,
      gradAccum: 1,
      adamw: { ...ADAMW_DEFAULTS, lr: o.lr, weightDecay: DEMO_RECIPE.tuning.weightDecay },
      schedule: DEMO_RECIPE.tuning.schedule,
      warmupSteps: 0,
      maxGradNorm: 1,
      seed: 0,
      saveEvery: o.tuneSteps,
      lossOn: 'last',
      onBadLine: 'stop',
    },
    true,
    (p) => {
      if (p.step % 25 === 0 || p.step === p.steps) o.log(`   step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)}`);
    },
  );
  const tuned = Model.load(run.dir, { device: 'cpu' });
  try {
    const report = await evaluate(tuned, run.dir, files, path.join(o.out, `eval-${name}`), o);
    return { report, ...(await shift.of(tuned)), dir: run.dir };
  } finally {
    await tuned.dispose();
  }
}

/**
 * KL(base || tuned) on neutral question-and-answer conversations: over the positions that predict the answer (the
 * organism's own turns, which every stage trained), and over every position. The organism was never trained to
 * predict the user's text or the template, so its distributions there are whatever its training left; tuning moves
 * them more than the answers, and the mean over every position mostly measures that.
 */
class NeutralShift {
  private constructor(
    private readonly neutral: Example[],
    private readonly base: RecordedLogits,
  ) {}

  static async record(base: Model): Promise<NeutralShift> {
    const neutral = neutralConversations(50, 13).map((m) => labelled(m, base.tokenizer, 'all'));
    return new NeutralShift(
      neutral,
      await RecordedLogits.record(
        base,
        neutral.map((e) => e.ids),
      ),
    );
  }

  async of(tuned: Model): Promise<{ kl: number; klAllPositions: number }> {
    const kls = await this.base.klsOf(tuned);
    // position t predicts token t + 1: an answer position when that token is labelled
    const answers = this.neutral.flatMap((e, i) => Array.from(kls[i]).filter((_, t) => t + 1 < e.labels.length && e.labels[t + 1] !== IGNORE_INDEX));
    return { kl: meanOf(answers), klAllPositions: meanOf(kls.flatMap((k) => Array.from(k))) };
  }

  remove(): void {
    this.base.remove();
  }
}
