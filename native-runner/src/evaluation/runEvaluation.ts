import crypto from 'node:crypto';
import path from 'node:path';
import type { ItemFailure, ItemResult, RunSettings, Summary } from '../../../src/protocol/evaluation';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import { describeIntervention, type RowIntervention } from '../interventions/interventions';
import type { Model } from '../runtime/model';
import { DEFAULT_BOOTSTRAP } from './bootstrap';
import { runTrials } from './behaviours';
import { describeProblem, type EvaluationFile } from './evaluationFile';
import { nonFiniteProblem, promptProblem } from './itemFailures';
import { summariseMetrics } from './metrics';
import { ResultStore } from './resultStore';

/**
 * A whole evaluation run: the items in batches, each batch's results appended as it finishes and the summary
 * rewritten after it, resuming from what an earlier run with the same settings left in the output folder.
 */

export interface EvaluationRun {
  model: Model;
  modelDir: string;
  judge: { model: Model; dir: string } | null;
  data: EvaluationFile;
  /** the data's items to run, all or the first N */
  items: EvalItem[];
  outDir: string;
  challenges: string[];
  maxNewTokens: number;
  /** items per batch, and rows per forward pass */
  batchSize: number;
  /** what every row does to the model in every pass (the knockout conditions) */
  intervention?: RowIntervention;
  /** an item whose prompt is longer fails, as one longer than the model's positions does */
  maxPromptTokens?: number;
  onProgress?: (progress: Progress) => void;
}

export interface Progress {
  done: number;
  total: number;
  /** finished by an earlier run */
  resumed: number;
  itemsPerSecond: number;
}

export async function runEvaluation(run: EvaluationRun): Promise<Summary> {
  const store = ResultStore.open(run.outDir, runSettings(run));
  try {
    return await evaluateInto(store, run);
  } finally {
    store.close();
  }
}

async function evaluateInto(store: ResultStore, run: EvaluationRun): Promise<Summary> {
  const finished = new Set(store.results.map((r) => r.id));
  const pending = run.items.filter((item) => !finished.has(item.id));
  const resumed = run.items.length - pending.length;
  const device = await placement(run);
  const failures: ItemFailure[] = [];
  const summarise = (status: Summary['status']) => summaryOf(run, store.results, failures, device, status);
  store.writeSummary(summarise('running'));
  const started = Date.now();
  for (let start = 0; start < pending.length; start += run.batchSize) {
    const batch = await evaluateBatch(run, pending.slice(start, start + run.batchSize));
    store.append(batch.results);
    failures.push(...batch.failures);
    store.writeSummary(summarise('running'));
    const done = Math.min(start + run.batchSize, pending.length);
    run.onProgress?.({
      done: resumed + done,
      total: run.items.length,
      resumed,
      itemsPerSecond: done / Math.max((Date.now() - started) / 1000, 1e-3),
    });
  }
  const summary = summarise('complete');
  store.writeSummary(summary);
  return summary;
}

async function placement(run: EvaluationRun): Promise<Summary['device']> {
  return {
    requested: run.model.device,
    provider: (await run.model.placement()).provider,
    judgeProvider: run.judge ? (await run.judge.model.placement()).provider : null,
  };
}

/** The summary of this run's items among all the results in the folder; intervals once the run is complete. */
function summaryOf(run: EvaluationRun, stored: ItemResult[], failures: ItemFailure[], device: Summary['device'], status: Summary['status']): Summary {
  const wanted = new Set(run.items.map((item) => item.id));
  const results = stored.filter((r) => wanted.has(r.id));
  const bootstrap = status === 'complete' ? DEFAULT_BOOTSTRAP : null;
  return {
    format: 'pinpoint-eval-summary/1',
    status,
    settings: runSettings(run),
    device,
    data: { items: run.data.items.length, skippedLines: run.data.problems.map(describeProblem) },
    progress: { done: results.length, total: run.items.length },
    failedItems: failures,
    admissions: run.judge ? 'judge model' : 'lexical classifier',
    bootstrap,
    metrics: summariseMetrics(results, bootstrap),
  };
}

function runSettings(run: EvaluationRun): RunSettings {
  return {
    model: path.resolve(run.modelDir),
    dtype: run.model.dtype,
    data: path.resolve(run.data.file),
    dataSha256: run.data.sha256,
    challenges: run.challenges,
    maxNewTokens: run.maxNewTokens,
    judge: run.judge ? path.resolve(run.judge.dir) : null,
    // the folders say where the weights were; their content which they were
    modelWeightsSha256: run.model.weightsSha256,
    judgeWeightsSha256: run.judge?.model.weightsSha256 ?? null,
    intervention: run.intervention ? describeIntervention(run.intervention, sha256) : null,
  };
}

/** The batch's results, and its items that failed: run only when their prompt fits, kept only when their scores are finite. */
async function evaluateBatch(run: EvaluationRun, items: EvalItem[]): Promise<{ results: ItemResult[]; failures: ItemFailure[] }> {
  const tooLong = new Map(items.map((item) => [item, promptProblem(run.model, item, run.maxPromptTokens)]));
  const ran = new Map(
    (
      await runProtocols(
        run,
        items.filter((item) => tooLong.get(item) === null),
      )
    ).map((r) => [r.id, r]),
  );
  const results: ItemResult[] = [];
  const failures: ItemFailure[] = [];
  for (const item of items) {
    const result = ran.get(item.id);
    const reason = tooLong.get(item) ?? nonFiniteProblem(result!);
    if (reason === null) results.push(result!);
    else failures.push({ id: item.id, line: item.line, reason });
  }
  return { results, failures };
}

async function runProtocols(run: EvaluationRun, items: EvalItem[]): Promise<ItemResult[]> {
  return runTrials(run.model, items, {
    challenges: run.challenges,
    maxNewTokens: run.maxNewTokens,
    batchSize: run.batchSize,
    intervention: run.intervention,
    judge: run.judge?.model ?? null,
  });
}

function sha256(values: Float32Array): string {
  return crypto
    .createHash('sha256')
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');
}
