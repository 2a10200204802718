import path from 'node:path';
import type { LossOn, ModelSpec, Schedule, TuneStep } from '../../../src/protocol/jobs';
import type { TuneManifest } from '../../../src/protocol/tuning';
import { sha256File } from '../model/weightsSha256';
import { withOutputLock } from '../outputLock';
import { Model } from '../runtime/model';
import { shuffled } from '../seededRandom';
import type { AdamWHyper } from './adamw';
import { readConversations, type DataProblem, type OnBadLine } from './conversations';
import { bucket, labelledCount, type Example } from './lossBatch';
import type { TrainingShape } from './trainingGraph';
import type { TuneSpec } from './parameters';
import { Trainer } from './trainer';
import { latestCheckpoint, loadState, removeStaleTemporaries, saveCheckpoint } from './tunedCheckpoint';

/** A tuning run from data file to checkpoints: the `pinpoint tune` command and the extension's Tune job. */

export interface TuneConfig {
  model: ModelSpec;
  data: string;
  out: string;
  spec: TuneSpec;
  steps: number;
  /** examples per micro-batch, and micro-batches accumulated per optimizer step */
  batchSize: number;
  gradAccum: number;
  adamw: AdamWHyper;
  schedule: Schedule;
  warmupSteps: number;
  maxGradNorm: number;
  seed: number;
  saveEvery: number;
  lossOn: LossOn;
  onBadLine: OnBadLine;
}

export interface TuneResult {
  /** the newest checkpoint: a Hub checkpoint of the tuned model */
  dir: string;
  losses: number[];
  skipped: DataProblem[];
  provider: string;
}

export class TuneError extends Error {}

/** The run, with its folder held (outputLock.ts) from before the model loads, so that a second run is refused at once. */
export function tune(config: TuneConfig, resume: boolean, onProgress: (p: TuneStep) => void): Promise<TuneResult> {
  return withOutputLock(config.out, 'tuning', () => runTuning(config, resume, onProgress));
}

async function runTuning(config: TuneConfig, resume: boolean, onProgress: (p: TuneStep) => void): Promise<TuneResult> {
  const model = Model.load(config.model.dir, { device: config.model.device, dtype: config.model.dtype });
  try {
    const data = readConversations(config.data, model.tokenizer, { lossOn: config.lossOn, onBadLine: config.onBadLine });
    const order = new DataOrder(data.examples.length, config.seed);
    const microBatches = (step: number) =>
      Array.from({ length: config.gradAccum }, (_, j) => order.batch(step * config.gradAccum + j, config.batchSize).map((i) => data.examples[i]));
    const trainer = new Trainer(model, {
      spec: config.spec,
      adamw: config.adamw,
      schedule: { kind: config.schedule, warmupSteps: config.warmupSteps, totalSteps: config.steps },
      maxGradNorm: config.maxGradNorm,
      shape: runShape(Array.from({ length: config.steps }, (_, step) => microBatches(step))),
      tokenQuantum: TOKEN_QUANTUM,
      rowQuantum: ROW_QUANTUM,
    });
    const manifest = newManifest(config, model, trainer);
    removeStaleTemporaries(config.out);
    restore(config, trainer, manifest, resume);
    let dir = latestCheckpoint(config.out) ?? '';
    const started = Date.now();
    const firstStep = trainer.step;
    while (trainer.step < config.steps) {
      const micro = microBatches(trainer.step);
      const report = await trainer.train(micro);
      record(manifest, report);
      const done = trainer.step - firstStep;
      const seconds = (Date.now() - started) / 1000;
      if (trainer.step % config.saveEvery === 0 || trainer.step === config.steps) {
        manifest.step = trainer.step;
        dir = saveCheckpoint(config.out, model.checkpoint, trainer.slices, { params: trainer.params, states: trainer.states, manifest });
      }
      // after the save: a stop requested here (onProgress throws) keeps this step's checkpoint
      onProgress({
        step: trainer.step,
        steps: config.steps,
        loss: report.loss,
        lr: report.lr,
        gradNorm: report.gradNorm,
        tokensPerSecond: tokensSeen(micro) / Math.max(1e-9, seconds / done),
        etaSeconds: (seconds / done) * (config.steps - trainer.step),
      });
    }
    return { dir, losses: manifest.metrics.losses, skipped: data.skipped, provider: trainer.placement?.provider ?? 'cpu' };
  } finally {
    await model.dispose();
  }
}

const TOKEN_QUANTUM = 32;
const ROW_QUANTUM = 32;

/** One graph size for every step of the run: its longest example and its most labelled micro-batch, rounded up. */
function runShape(steps: Example[][][]): TrainingShape {
  const micro = steps.flat();
  const most = (values: number[]) => values.reduce((a, b) => Math.max(a, b), 1);
  return {
    microBatches: steps[0]?.length ?? 1,
    batch: most(micro.map((mb) => mb.length)),
    tokens: bucket(most(micro.flat().map((e) => e.ids.length)), TOKEN_QUANTUM),
    rows: bucket(most(micro.map(labelledCount)), ROW_QUANTUM),
  };
}

function tokensSeen(micro: Example[][]): number {
  return micro.flat().reduce((n, e) => n + e.ids.length, 0);
}

function record(manifest: TuneManifest, report: { loss: number; lr: number; gradNorm: number }): void {
  manifest.metrics.losses.push(report.loss);
  manifest.metrics.lrs.push(report.lr);
  manifest.metrics.gradNorms.push(report.gradNorm);
}

function newManifest(config: TuneConfig, model: Model, trainer: Trainer): TuneManifest {
  return {
    format: 'pinpoint-tune/1',
    step: 0,
    mode: config.spec.mode,
    heads: config.spec.heads,
    includeKeyValue: config.spec.includeKeyValue,
    hyperparameters: {
      steps: config.steps,
      batchSize: config.batchSize,
      gradAccum: config.gradAccum,
      ...config.adamw,
      schedule: config.schedule,
      warmupSteps: config.warmupSteps,
      maxGradNorm: config.maxGradNorm,
      seed: config.seed,
      lossOn: config.lossOn,
      dtype: config.model.dtype,
    },
    data: [{ file: path.resolve(config.data), sha256: sha256File(config.data) }],
    base: { dir: path.resolve(config.model.dir), weightsSha256: model.weightsSha256 },
    metrics: { losses: [], lrs: [], gradNorms: [] },
    blocks: trainer.slices.map((s) => s.id),
  };
}

/** Continues from the newest checkpoint when asked to, after checking it belongs to this very run. */
function restore(config: TuneConfig, trainer: Trainer, manifest: TuneManifest, resume: boolean): void {
  const latest = latestCheckpoint(config.out);
  if (!latest) return;
  if (!resume) throw new TuneError(`${config.out} already holds a tuning run (${latest}); pass --resume to continue it, or choose another --out`);
  const saved = loadState(latest, trainer.slices);
  const [before, now] = [resumeIdentity(saved.manifest), resumeIdentity(manifest)];
  const differences = (Object.keys(now) as (keyof typeof now)[]).filter((key) => JSON.stringify(before[key]) !== JSON.stringify(now[key]));
  if (differences.length)
    throw new TuneError(`${latest}/pinpoint.json differs from this run in: ${differences.join(', ')}; resume with the same model, data and settings`);
  for (const [id, values] of saved.params) trainer.params.get(id)!.set(values);
  for (const [id, state] of saved.states) Object.assign(trainer.states.get(id)!, state);
  trainer.step = saved.manifest.step;
  Object.assign(manifest.metrics, saved.manifest.metrics);
}

/** What a resumed run must share with its checkpoint: the base model by its weights' content, wherever its folder is now. */
function resumeIdentity(m: TuneManifest) {
  const { mode, includeKeyValue, heads, hyperparameters, data, blocks } = m;
  return { mode, includeKeyValue, heads, hyperparameters, data, base: m.base.weightsSha256, blocks };
}

/** Epoch after epoch of seeded permutations: which examples a micro-batch holds depends only on its index. */
class DataOrder {
  private readonly epochs = new Map<number, number[]>();

  constructor(
    private readonly size: number,
    private readonly seed: number,
  ) {}

  batch(index: number, batchSize: number): number[] {
    return Array.from({ length: batchSize }, (_, k) => {
      const position = index * batchSize + k;
      return this.epoch(Math.floor(position / this.size))[position % this.size];
    });
  }

  private epoch(e: number): number[] {
    let order = this.epochs.get(e);
    if (!order) {
      order = shuffled(this.size, this.seed * 1_000_003 + e);
      this.epochs.set(e, order);
    }
    return order;
  }
}
