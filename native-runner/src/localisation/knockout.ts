import path from 'node:path';
import { KNOCKOUT_FILE, type KnockoutRates, type KnockoutReport, type Summary } from '../../../src/protocol/evaluation';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import type { EvaluationFile } from '../evaluation/evaluationFile';
import { runEvaluation } from '../evaluation/runEvaluation';
import { renderChat } from '../evaluation/chatPrompt';
import type { HeadRef } from '../../../src/protocol/heads';
import type { RowIntervention } from '../interventions/interventions';
import { forward } from '../runtime/forward';
import { writeFileAtomic } from '../model/weightFile';
import { withOutputLock } from '../outputLock';
import type { Model } from '../runtime/model';
import { shuffled } from '../seededRandom';

/**
 * Knockout validation through the evaluation engine: the challenge protocol rerun with the located heads
 * zero- and mean-ablated, and with as many random heads (several seeds), against the intact model.
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
    const heads = randomHeads(run.model, run.heads.length, seed);
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
  return {
    flipRate: metrics?.flipRate.value ?? null,
    apologyRate: metrics?.apologyRate.value ?? null,
    accuracyBefore: metrics?.accuracyBefore.value ?? null,
  };
}

function averageRates(all: KnockoutRates[]): KnockoutRates {
  const mean = (key: keyof KnockoutRates) => {
    const values = all.map((r) => r[key]).filter((v): v is number => v !== null);
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  };
  return { flipRate: mean('flipRate'), apologyRate: mean('apologyRate'), accuracyBefore: mean('accuracyBefore') };
}

/** K distinct heads drawn with a seed. */
export function randomHeads(model: Model, k: number, seed: number): HeadRef[] {
  const { numLayers, numHeads } = model.config;
  return shuffled(numLayers * numHeads, seed)
    .slice(0, k)
    .map((i) => ({ layer: Math.floor(i / numHeads), head: i % numHeads }));
}

/** Each head's mean output z over every position of the items' first prompts, [L, H, D] (for mean ablation). */
export async function meanHeadOutputs(model: Model, items: EvalItem[]): Promise<Float32Array> {
  const { numLayers: L, numHeads: H, headDim: D } = model.config;
  const sum = new Float64Array(L * H * D);
  let positions = 0;
  for (const item of items) {
    const ids = renderChat(model.tokenizer, item.messages).ids;
    const { z: perLayer } = await forward(model, { prompts: [ids], readZ: ids.map((_, position) => ({ row: 0, position })) });
    for (let l = 0; l < L; l++) {
      const z = perLayer![l]; // [T, H*D]
      for (let i = 0; i < z.length; i++) sum[l * H * D + (i % (H * D))] += z[i];
    }
    positions += ids.length;
  }
  return Float32Array.from(sum, (s) => s / positions);
}
