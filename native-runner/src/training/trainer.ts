import { readTensor } from '../checkpoint/safetensors';
import type { Model } from '../runtime/model';
import { adamwStep, clipGradNorm, globalNorm, newAdamWState, type AdamWHyper, type AdamWState } from './adamw';
import { bucket, labelledCount, lossBatch, type Example } from './lossBatch';
import { readBlock, trainableSlices, writeBlock, type ParamSlice, type TuneSpec } from './parameters';
import { learningRate, type Schedule } from './schedule';
import { TrainingSession } from './trainingSession';

export interface TrainerOptions {
  spec: TuneSpec;
  adamw: AdamWHyper;
  schedule: Schedule;
  /** clip the global gradient norm to this (0: no clipping) */
  maxGradNorm: number;
  /** pad batches to multiples of these, so few graphs are compiled (1: exact sizes) */
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

/**
 * The optimisation loop's state: the trainable blocks' values and AdamW moments, kept in host memory (the
 * frozen weights stay in the graphs), and one optimizer step per call over any number of micro-batches whose
 * gradients are accumulated.
 */
export class Trainer {
  readonly slices: ParamSlice[];
  readonly params: Map<string, Float32Array>;
  readonly states: Map<string, AdamWState>;
  step = 0;
  private readonly session: TrainingSession;

  constructor(readonly model: Model, readonly options: TrainerOptions) {
    this.slices = trainableSlices(model.config, options.spec);
    const tensors = new Map<string, Float32Array>();
    const tensor = (name: string) => tensors.get(name) ?? tensors.set(name, readTensor(model.checkpoint.tensors.get(name)!)).get(name)!;
    this.params = new Map(this.slices.map((s) => [s.id, readBlock(tensor(s.tensor), s)]));
    this.states = new Map(this.slices.map((s) => [s.id, newAdamWState(this.params.get(s.id)!.length)]));
    this.session = new TrainingSession(model, this.slices);
  }

  get placement() {
    return this.session.placement;
  }

  /** One optimizer step over the micro-batches of one (accumulated) batch. */
  async train(microBatches: Example[][]): Promise<StepReport> {
    const { loss, grads, tokens } = await this.gradients(microBatches);
    const all = [...grads.values()];
    const gradNorm = this.options.maxGradNorm > 0 ? clipGradNorm(all, this.options.maxGradNorm) : globalNorm(all);
    const lr = learningRate(this.options.adamw.lr, this.options.schedule, this.step);
    for (const s of this.slices) adamwStep(this.params.get(s.id)!, grads.get(s.id)!, this.states.get(s.id)!, this.options.adamw, lr, s.decays);
    this.step += 1;
    return { loss, lr, gradNorm, tokens };
  }

  /** The loss of the current parameters, without an update. */
  async loss(microBatches: Example[][]): Promise<number> {
    return (await this.gradients(microBatches)).loss;
  }

  /** Loss and gradients summed over micro-batches, each token weighted 1 / (labelled tokens of the whole batch). */
  private async gradients(microBatches: Example[][]) {
    const total = microBatches.reduce((n, mb) => n + labelledCount(mb), 0);
    if (total === 0) throw new RangeError('a training batch has no labelled token');
    let loss = 0;
    let tokens = 0;
    const grads = new Map(this.slices.map((s) => [s.id, new Float32Array(this.params.get(s.id)!.length)]));
    for (const examples of microBatches) {
      const size = {
        tokens: bucket(Math.max(...examples.map((e) => e.ids.length)), this.options.tokenQuantum),
        rows: bucket(labelledCount(examples), this.options.rowQuantum),
      };
      const result = await this.session.step(lossBatch(examples, this.model.padId, total, size), this.params);
      loss += result.loss;
      tokens += examples.reduce((n, e) => n + e.ids.length, 0);
      for (const [id, g] of result.grads) addInto(grads.get(id)!, g);
    }
    return { loss, grads, tokens };
  }

  /** Gradients of the current parameters assembled into whole tensors (frozen parts zero), by tensor name. */
  async gradientsByTensor(microBatches: Example[][]): Promise<Map<string, Float32Array>> {
    const { grads } = await this.gradients(microBatches);
    const tensors = new Map<string, Float32Array>();
    for (const s of this.slices) {
      const whole = tensors.get(s.tensor) ?? new Float32Array(s.tensorShape.reduce((a, b) => a * b, 1));
      writeBlock(whole, s, grads.get(s.id)!);
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
}

function addInto(sum: Float32Array, x: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] += x[i];
}
