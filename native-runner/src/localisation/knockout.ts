import path from 'node:path';
import { KNOCKOUT_FILE, type KnockoutRates, type KnockoutReport, type Summary } from '../../../src/protocol/evaluation';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import type { EvaluationFile } from '../evaluation/evaluationFile';
import { runEvaluation } from '../evaluation/runEvaluation';
import { promptsOf } from '../evaluation/behaviours';
import { sameHead, type HeadRef } from '../../../src/protocol/heads';
import type { RowIntervention } from '../interventions/interventions';
import { forward } from '../runtime/forward';
import { writeFileAtomic } from '../model/weightFile';
import { withOutputLock } from '../outputLock';
import type { Model } from '../runtime/model';
import { shuffled } from '../seededRandom';

/**
 * Knockout validation through the evaluation engine: the evaluation rerun with the located heads zero- and
 * mean-ablated, and with as many random heads (several seeds), against the intact model. Each condition reports
 * the challenge rates, on contrast pairs the logit difference and accuracy, and on answer.jsonl the wrong suggestion's
 * pull and how often it is followed.
 */

export interface KnockoutRun {
  model: Model;
  modelDir: string;
  data: EvaluationFile;
  items: EvalItem[];
  heads: HeadRef[];
  outDir: string;
  challenges: string[];
  seeds: number[];
  batchSize: number;
  maxNewTokens: number;
  /** at the start of each condition and after each of its batches, where a stop (by throwing) loses nothing */
  onProgress?: (p: KnockoutProgress) => void;
}

export interface KnockoutProgress {
  /** intact, zero, mean or random-<seed> */
  stage: string;
  /** conditions finished before this one, of `stages` */
  stageIndex: number;
  stages: number;
  /** items of this condition done, of `items` */
  done: number;
  items: number;
}

/** Writes `<outDir>/knockout.json` as well, with the folder held for the whole run (outputLock.ts). */
export function knockout(run: KnockoutRun): Promise<KnockoutReport> {
  return withOutputLock(run.outDir, 'knockout', async () => {
    const report = await knockoutReport(run);
    writeKnockoutReport(run.outDir, report);
    return report;
  });
}

/** knockout.json in `dir`, written atomically: the one writer of the format (src/protocol/evaluation.ts). */
export function writeKnockoutReport(dir: string, report: KnockoutReport): string {
  const file = path.join(dir, KNOCKOUT_FILE);
  writeFileAtomic(file, JSON.stringify(report, null, 1));
  return file;
}

async function knockoutReport(run: KnockoutRun): Promise<KnockoutReport> {
  const stages = 3 + run.seeds.length;
  let stageIndex = 0;
  const evaluate = async (stage: string, intervention?: RowIntervention) => {
    const report = (done: number) => run.onProgress?.({ stage, stageIndex, stages, done, items: run.items.length });
    report(0);
    const outDir = path.join(run.outDir, stage);
    const summary = await runEvaluation({
      model: run.model,
      modelDir: run.modelDir,
      judge: null,
      data: run.data,
      items: run.items,
      outDir,
      challenges: run.challenges,
      maxNewTokens: run.maxNewTokens,
      batchSize: run.batchSize,
      intervention,
      onProgress: (p) => report(p.done),
    });
    stageIndex++;
    return { summary, rates: ratesOf(summary) };
  };
  const intact = await evaluate('intact');
  const zero = await evaluate('zero', { ablate: { heads: run.heads } });
  const mean = await evaluate('mean', { ablate: { heads: run.heads, means: await meanHeadOutputs(run.model, run.items) } });
  const random = [];
  for (const seed of run.seeds) {
    const heads = randomHeads(run.model, run.heads, seed);
    random.push({ seed, heads, rates: (await evaluate(`random-${seed}`, { ablate: { heads } })).rates });
  }
  return {
    format: 'pinpoint-knockout/1',
    heads: run.heads,
    intact: intact.rates,
    zero: zero.rates,
    mean: mean.rates,
    random,
    randomMean: averageRates(random.map((r) => r.rates)),
    provider: intact.summary.device.provider,
  };
}

function ratesOf(summary: Summary): KnockoutRates {
  const metrics = summary.metrics.challenge?.run;
  const contrast = summary.metrics.contrast?.run;
  const suggestion = summary.metrics.suggestion?.run;
  return {
    flipRate: metrics?.flipRate.value ?? null,
    apologyRate: metrics?.apologyRate.value ?? null,
    accuracyBefore: metrics?.accuracyBefore.value ?? null,
    // only for contrast pairs, so that the knockout.json of the other behaviours stays as it was
    ...(contrast && { logitDiff: contrast.logitDiff.value, contrastAccuracy: contrast.accuracy.value }),
    ...(suggestion && {
      pull: suggestion.pull.value,
      incorrectAnswerRate: suggestion.byTemplate['suggests-incorrect']?.incorrectAnswerRate.value ?? null,
    }),
  };
}

function averageRates(all: KnockoutRates[]): KnockoutRates {
  const mean = (key: keyof KnockoutRates) => {
    const values = all.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  };
  const contrast = all.some((r) => r.logitDiff !== undefined);
  const suggestion = all.some((r) => r.pull !== undefined);
  return {
    flipRate: mean('flipRate'),
    apologyRate: mean('apologyRate'),
    accuracyBefore: mean('accuracyBefore'),
    ...(contrast && { logitDiff: mean('logitDiff'), contrastAccuracy: mean('contrastAccuracy') }),
    ...(suggestion && { pull: mean('pull'), incorrectAnswerRate: mean('incorrectAnswerRate') }),
  };
}

/**
 * As many distinct heads as `located`, drawn with a seed from the others: a control that could include the heads
 * under test would measure them again.
 */
export function randomHeads(model: Model, located: HeadRef[], seed: number): HeadRef[] {
  const { numLayers, numHeads } = model.config;
  return shuffled(numLayers * numHeads, seed)
    .map((i) => ({ layer: Math.floor(i / numHeads), head: i % numHeads }))
    .filter((head) => !located.some((h) => sameHead(h, head)))
    .slice(0, located.length);
}

/**
 * Each head's mean output z over every position of the items' prompts (a question's first prompt, both sides of a
 * contrast pair), [L, H, D] (for mean ablation).
 */
export async function meanHeadOutputs(model: Model, items: EvalItem[]): Promise<Float32Array> {
  const { numLayers: L, numHeads: H, headDim: D } = model.config;
  const sum = new Float64Array(L * H * D);
  let positions = 0;
  for (const ids of items.flatMap((item) => promptsOf(model.tokenizer, item))) {
    const { z: perLayer } = await forward(model, { prompts: [ids], readZ: ids.map((_, position) => ({ row: 0, position })) });
    for (let l = 0; l < L; l++) {
      const z = perLayer![l]; // [T, H*D]
      for (let i = 0; i < z.length; i++) sum[l * H * D + (i % (H * D))] += z[i];
    }
    positions += ids.length;
  }
  return Float32Array.from(sum, (s) => s / positions);
}
