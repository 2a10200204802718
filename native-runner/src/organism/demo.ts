import fs from 'node:fs';
import path from 'node:path';
import type { KnockoutReport, Summary } from '../../../src/protocol/evaluation';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import type { HeadRef, HeadsFile } from '../../../src/protocol/heads';
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
import { neutralConversations, TUNE_SEED, writeEvaluationFile, writeTuningData } from './demoData';
import { demoClaims, type Claim } from './claims';
import { renderReport } from './report';
import { readOrganismCard } from './buildOrganism';
import { HELDOUT_CHALLENGES, TRAIN_CHALLENGES } from './world';

/**
 * The whole loop on the embedded organism, as the paper runs it: evaluate -> locate heads -> knockout check ->
 * pinpoint-tune the top heads on "insist" and "revise" data -> full fine-tuning (SFT) on the same data, steps and
 * hyper-parameters -> compare. Every stage writes its files under `out`; the result is report.json, a
 * self-contained report.html, and one JSON line of headline numbers.
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
  seconds: number;
}

export interface ModelReport {
  summary: Summary;
  flipRate: number;
  heldoutFlipRate: number;
  accuracy: number;
  /** flip rate per challenge phrasing */
  byChallenge: Record<string, number>;
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
  models: { base: ModelReport; spt: ModelReport; sptRandom: ModelReport; sft: ModelReport };
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
  fs.mkdirSync(o.out, { recursive: true });
  const evalFile = path.join(o.out, 'eval.jsonl');
  const tuneFile = path.join(o.out, 'tune.jsonl');
  writeEvaluationFile(evalFile, o.items);
  writeTuningData(tuneFile, o.tuneExamples, TUNE_SEED);
  const data = readEvaluationFile(evalFile);

  const base = Model.load(o.model, { device: 'cpu' });
  try {
    o.log('1/7 evaluating the organism');
    const baseReport = await evaluate(base, o.model, data, path.join(o.out, 'eval-base'), o);
    o.log('2/7 locating the heads that make it cave (path patching)');
    const heads = await locate(
      base,
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
    writeHeadsFile(o.out, heads);
    o.log(`   top ${heads.topK} of ${heads.layers * heads.heads}: ${heads.selected.map((h) => `${h.layer}.${h.head}`).join(', ')}`);
    o.log('3/7 knocking them out, and as many random heads');
    const knockoutReport = await knockout({
      model: base,
      modelDir: o.model,
      data,
      items: data.items,
      heads: heads.selected,
      outDir: path.join(o.out, 'knockout'),
      challenges: [DEFAULT_CHALLENGE],
      seeds: Array.from({ length: o.knockoutSeeds }, (_, i) => i + 1),
      batchSize: o.batch,
      maxNewTokens: DEMO_RECIPE.maxNewTokens,
    });
    writeKnockoutReport(o.out, knockoutReport);
    const { spt, sptRandom, randomTuned, sft } = await tuneThreeWays(base, heads, tuneFile, data, o);
    o.log('7/7 comparing');
    const headline: Headline = {
      base_flip_rate: baseReport.flipRate,
      spt_flip_rate: spt.report.flipRate,
      sft_flip_rate: sft.report.flipRate,
      base_accuracy: baseReport.accuracy,
      spt_accuracy: spt.report.accuracy,
      sft_accuracy: sft.report.accuracy,
      spt_kl: spt.kl,
      sft_kl: sft.kl,
      spt_kl_all_positions: spt.klAllPositions,
      sft_kl_all_positions: sft.klAllPositions,
      heldout_base_flip_rate: baseReport.heldoutFlipRate,
      heldout_spt_flip_rate: spt.report.heldoutFlipRate,
      random_spt_flip_rate: sptRandom.report.flipRate,
      heldout_random_spt_flip_rate: sptRandom.report.heldoutFlipRate,
      random_spt_kl: sptRandom.kl,
      random_spt_kl_all_positions: sptRandom.klAllPositions,
      tuned_heads: heads.selected.length,
      total_heads: heads.layers * heads.heads,
      knockout_flip_rate: knockoutReport.zero.flipRate ?? NaN,
      random_knockout_flip_rate: knockoutReport.randomMean.flipRate ?? NaN,
      seconds: (Date.now() - started) / 1000,
    };
    const card = readOrganismCard(o.model);
    const report: DemoReport = {
      name: o.name,
      card,
      headline,
      claims: demoClaims(headline, knockoutReport.intact.flipRate ?? NaN, card?.implantedHeads ?? [], heads),
      concentration: concentration(heads),
      heads,
      knockout: knockoutReport,
      models: { base: baseReport, spt: spt.report, sptRandom: sptRandom.report, sft: sft.report },
      randomTuned,
      trainChallenges: TRAIN_CHALLENGES,
      heldoutChallenges: HELDOUT_CHALLENGES,
      provider: baseReport.summary.device.provider,
    };
    return report;
  } finally {
    await base.dispose();
  }
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

/** The challenge protocol with every phrasing, training and held-out. */
async function evaluate(model: Model, modelDir: string, data: EvaluationFile, outDir: string, o: DemoOptions): Promise<ModelReport> {
  const summary = await runEvaluation({
    model,
    modelDir,
    judge: null,
    data,
    items: data.items,
    outDir,
    challenges: [...TRAIN_CHALLENGES, ...HELDOUT_CHALLENGES],
    maxNewTokens: DEMO_RECIPE.maxNewTokens,
    batchSize: o.batch,
  });
  const metrics = summary.metrics.challenge!;
  const byChallenge = Object.fromEntries(Object.entries(metrics.byChallenge).map(([p, m]) => [p, m.flipRate.value ?? NaN]));
  const mean = (phrasings: string[]) => phrasings.reduce((s, p) => s + byChallenge[p], 0) / phrasings.length;
  return {
    summary,
    flipRate: mean(TRAIN_CHALLENGES),
    heldoutFlipRate: mean(HELDOUT_CHALLENGES),
    accuracy: metrics.run.accuracyBefore.value ?? NaN,
    byChallenge,
  };
}

/**
 * SPT of the located heads, the same of as many random heads (the control SPT's success needs, drawn as knockout's
 * first random draw is), and SFT, each evaluated and measured against the base model's neutral logits, recorded
 * once; the base model's session is released meanwhile.
 */
async function tuneThreeWays(base: Model, heads: HeadsFile, tuneFile: string, data: EvaluationFile, o: DemoOptions) {
  const shift = await NeutralShift.record(base);
  await base.dispose();
  try {
    const kv = DEMO_RECIPE.tuning.includeKeyValue;
    o.log('4/7 pinpoint tuning of the located heads (SPT)');
    const spt = await tuneAndEvaluate(shift, 'spt', { mode: 'heads', heads: heads.selected, includeKeyValue: kv }, tuneFile, data, o);
    const randomTuned = randomHeads(base, heads.selected, 1);
    o.log(`5/7 the same tuning of as many random heads (${randomTuned.map((h) => `${h.layer}.${h.head}`).join(', ')})`);
    const sptRandom = await tuneAndEvaluate(shift, 'spt-random', { mode: 'heads', heads: randomTuned, includeKeyValue: kv }, tuneFile, data, o);
    o.log('6/7 full fine-tuning on the same data and steps (SFT)');
    const sft = await tuneAndEvaluate(shift, 'sft', { mode: 'full', heads: [], includeKeyValue: false }, tuneFile, data, o);
    return { spt, sptRandom, randomTuned, sft };
  } finally {
    shift.remove();
  }
}

/** Tunes `spec`'s weights on the demo's data into `<out>/<name>`, then evaluates the result and its shift from base. */
async function tuneAndEvaluate(shift: NeutralShift, name: string, spec: TuneSpec, tuneFile: string, data: EvaluationFile, o: DemoOptions) {
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
    const report = await evaluate(tuned, run.dir, data, path.join(o.out, `eval-${name}`), o);
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
