import { readTensor } from '../checkpoint/safetensors';
import type { Model } from '../runtime/model';
import { newAdamWState, type AdamWHyper, type AdamWState } from './adamw';
import { bucket, labelledCount, type Example } from './lossBatch';
import { readBlock, trainableSlices, writeBlock, type ParamSlice, type TuneSpec } from './parameters';
import { learningRate, type Schedule } from './schedule';
import type { TrainingShape } from './trainingGraph';
import { TrainingSession } from './trainingSession';

export interface TrainerOptions {
  spec: TuneSpec;
  adamw: AdamWHyper;
  schedule: Schedule;
  /** clip the global gradient norm to this (0: no clipping) */
  maxGradNorm: number;
  /**
   * the step graph's size, known up front for a whole run so that one graph is compiled; a step that does not fit
   * grows it (and compiles another graph), rounded up to the quanta
   */
  shape?: TrainingShape;
  tokenQuantum: number;
  rowQuantum: number;
}

export interface StepReport {
  /** mean loss over the labelled tokens of the step's batch, before the update */
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
}

/** Training produced a NaN or an infinity at optimizer step `step` (1-based); nothing of that step may be kept. */
export class DivergedError extends Error {
  constructor(
    readonly step: number,
    what: string,
  ) {
    super(
      `training diverged at step ${step}: ${what}. Nothing of this step is saved (a tuning run's latest.json still names ` +
        'its last finite checkpoint); a lower learning rate may keep it finite',
    );
    this.name = 'DivergedError';
  }
}

/**
 * The optimisation loop's state: the trainable blocks' float32 master values and AdamW moments, in host buffers
 * that the training graph reads and overwrites in place (the frozen weights stay in the graph), and one optimizer
 * step per call over any number of micro-batches whose gradients the graph accumulates.
 */
export class Trainer {
  readonly slices: ParamSlice[];
  readonly params: Map<string, Float32Array>;
  readonly states: Map<string, AdamWState>;
  step = 0;
  private readonly session: TrainingSession;
  private shape: TrainingShape | undefined;

  constructor(
    readonly model: Model,
    readonly options: TrainerOptions,
  ) {
    this.slices = trainableSlices(model.config, options.spec);
    this.params = initialBlocks(model, this.slices);
    this.states = new Map(this.slices.map((s) => [s.id, newAdamWState(this.params.get(s.id)!.length)]));
    this.session = new TrainingSession(model, this.slices);
    this.shape = options.shape;
  }

  get placement() {
    return this.session.placement;
  }

  /**
   * One optimizer step over the micro-batches of one (accumulated) batch. A NaN or infinite loss or gradient norm
   * throws DivergedError: the graph has by then written the step's update into the blocks and moments, so the
   * trainer is spent, and the caller saves nothing more of it (saveCheckpoint refuses non-finite values too).
   */
  async train(microBatches: Example[][]): Promise<StepReport> {
    const lr = learningRate(this.options.adamw.lr, this.options.schedule, this.step);
    const { loss, gradNorm } = await this.run(microBatches, lr, { apply: true, gradients: false });
    if (!Number.isFinite(loss)) throw new DivergedError(this.step + 1, `the loss is ${loss}`);
    if (!Number.isFinite(gradNorm)) throw new DivergedError(this.step + 1, `the gradient norm is ${gradNorm}`);
    this.step += 1;
    for (const state of this.states.values()) state.step += 1;
    return { loss, lr, gradNorm, tokens: microBatches.flat().reduce((n, e) => n + e.ids.length, 0) };
  }

  /** The loss of the current parameters, without an update. */
  async loss(microBatches: Example[][]): Promise<number> {
    return (await this.run(microBatches, 0, { apply: false, gradients: false })).loss;
  }

  /** Gradients of the current parameters assembled into whole tensors (frozen parts zero), by tensor name. */
  async gradientsByTensor(microBatches: Example[][]): Promise<Map<string, Float32Array>> {
    const { grads } = await this.run(microBatches, 0, { apply: false, gradients: true });
    const tensors = new Map<string, Float32Array>();
    for (const s of this.slices) {
      const whole = tensors.get(s.tensor) ?? new Float32Array(s.tensorShape.reduce((a, b) => a * b, 1));
      writeBlock(whole, s, grads!.get(s.id)!);
      tensors.set(s.tensor, whole);
    }
    return tensors;
  }

  /** The whole tensor with the trained blocks written in (for checkpoints and comparisons). */
  tunedTensor(name: string): Float32Array {
    const tensor = readTensor(this.model.checkpoint.tensors.get(name)!);
    for (const s of this.slices) if (s.tensor === name) writeBlock(tensor, s, this.params.get(s.id)!);
    return tensor;
  }

  private async run(microBatches: Example[][], lr: number, options: { apply: boolean; gradients: boolean }) {
    if (microBatches.reduce((n, mb) => n + labelledCount(mb), 0) === 0) throw new RangeError('a training batch has no labelled token');
    const { adamw, maxGradNorm } = this.options;
    return this.session.run(
      this.fit(microBatches),
      { microBatches, params: this.params, states: this.states, adamw, lr, step: this.step + 1, maxGradNorm },
      options,
    );
  }

  /** The graph size for these micro-batches: the current one, grown where they need more. */
  private fit(microBatches: Example[][]): TrainingShape {
    const { tokenQuantum, rowQuantum } = this.options;
    const needed: TrainingShape = {
      microBatches: microBatches.length,
      batch: Math.max(...microBatches.map((mb) => mb.length)),
      tokens: bucket(Math.max(...microBatches.flat().map((e) => e.ids.length)), tokenQuantum),
      rows: bucket(Math.max(...microBatches.map(labelledCount)), rowQuantum),
    };
    const current = this.shape;
    const fits =
      current &&
      (Object.keys(needed) as (keyof TrainingShape)[]).every((k) => needed[k] <= current[k]) &&
      current.microBatches === needed.microBatches;
    if (!fits)
      this.shape = current
        ? {
            ...needed,
            batch: Math.max(needed.batch, current.batch),
            tokens: Math.max(needed.tokens, current.tokens),
            rows: Math.max(needed.rows, current.rows),
          }
        : needed;
    return this.shape!;
  }
}

/** The blocks' values from the checkpoint, one tensor read at a time; a block that is its whole tensor is not copied. */
function initialBlocks(model: Model, slices: ParamSlice[]): Map<string, Float32Array> {
  const blocks = new Map<string, Float32Array>();
  for (const name of new Set(slices.map((s) => s.tensor))) {
    const tensor = readTensor(model.checkpoint.tensors.get(name)!);
    for (const s of slices.filter((b) => b.tensor === name)) blocks.set(s.id, isWhole(s) ? tensor : readBlock(tensor, s));
  }
  return new Map(slices.map((s) => [s.id, blocks.get(s.id)!]));
}

function isWhole(s: ParamSlice): boolean {
  return s.start === 0 && s.end === s.tensorShape[s.axis];
}
