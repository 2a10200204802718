import * as ort from 'onnxruntime-node';
import { fileWeights } from '../model/weightFile';
import type { CompiledGraph, Model } from '../runtime/model';
import type { PlacementReport } from '../runtime/session';
import { adamwFeeds, type AdamWHyper, type AdamWState } from './adamw';
import { labelledCount, packBatch, type Example } from './lossBatch';
import type { ParamSlice } from './parameters';
import { blockInput, blockOutput, buildTrainingGraph, type TrainingShape } from './trainingGraph';

/**
 * The training graph of one model and one set of blocks, as the model's resident session (it takes the inference
 * graph's place while training runs). A step feeds the blocks' values and moments from host memory and has ONNX
 * Runtime write the updated ones back into the same buffers, so nothing but the step's tokens and two scalars cross
 * per step, and no gradient leaves the graph. The updates may overwrite their inputs because each one depends, through
 * the global norm, on every gradient, and so on every read of every parameter.
 */
export interface StepInputs {
  microBatches: Example[][];
  params: Map<string, Float32Array>;
  states: Map<string, AdamWState>;
  adamw: AdamWHyper;
  lr: number;
  /** the step number AdamW's bias corrections use, 1-based */
  step: number;
  maxGradNorm: number;
}

export interface StepOutputs {
  loss: number;
  gradNorm: number;
  /** only when asked for: the gradients summed over micro-batches, before clipping */
  grads: Map<string, Float32Array> | null;
}

export class TrainingSession {
  /** where the training graph ran, once it has */
  placement: PlacementReport | undefined;

  constructor(
    readonly model: Model,
    readonly slices: ParamSlice[],
  ) {}

  /**
   * One step on `shape`'s graph. `apply`: write the updates into the buffers; otherwise the state is left as it
   * is (a loss or gradient check). `gradients`: also return the gradients (a graph of its own).
   */
  async run(shape: TrainingShape, inputs: StepInputs, options: { apply: boolean; gradients: boolean }): Promise<StepOutputs> {
    const blocks = this.blockFeeds(inputs.params, inputs.states);
    const feeds = {
      ...this.tokenFeeds(shape, inputs.microBatches),
      ...adamwFeeds(inputs.adamw, inputs.lr, inputs.step, inputs.maxGradNorm),
      ...blocks,
    };
    const fetches: Record<string, ort.Tensor | null> = { loss: null, grad_norm: null };
    for (const s of this.slices) {
      // the updated values are written over the ones fed
      if (options.apply) for (const kind of ['param', 'm', 'v'] as const) fetches[blockOutput(`${kind}_out`, s)] = blocks[blockInput(kind, s)];
      if (options.gradients) fetches[blockOutput('grad', s)] = null;
    }
    // a graph compiled for this step measures its placement on the step itself rather than on a run of its own
    let out: ort.InferenceSession.ReturnType | undefined;
    const { session, placement } = await this.compiled(shape, inputs.adamw, options.gradients, async (s) => {
      out = await s.run(feeds, fetches);
    });
    this.placement = placement;
    out ??= await session.run(feeds, fetches);
    const scalar = (name: string) => (out![name].data as Float32Array)[0];
    const grads = options.gradients ? new Map(this.slices.map((s) => [s.id, out![blockOutput('grad', s)].data as Float32Array])) : null;
    return { loss: scalar('loss'), gradNorm: scalar('grad_norm'), grads };
  }

  private compiled(
    shape: TrainingShape,
    adamw: AdamWHyper,
    gradients: boolean,
    firstRun: (s: ort.InferenceSession) => Promise<void>,
  ): Promise<CompiledGraph> {
    const { model, slices } = this;
    const key = `train ${JSON.stringify({ shape, adamw, gradients, dtype: model.dtype })} ${slices.map((s) => s.id).join(' ')}`;
    return model.session(
      key,
      () => buildTrainingGraph({ config: model.config, frozen: fileWeights(model.weights), slices, shape, dtype: model.dtype, adamw, gradients }),
      firstRun,
      { prepack: false, measure: 'cuda' },
    );
  }

  private blockFeeds(params: Map<string, Float32Array>, states: Map<string, AdamWState>): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const s of this.slices) {
      const state = states.get(s.id)!;
      feeds[blockInput('param', s)] = new ort.Tensor('float32', params.get(s.id)!, s.shape);
      feeds[blockInput('m', s)] = new ort.Tensor('float32', state.m, s.shape);
      feeds[blockInput('v', s)] = new ort.Tensor('float32', state.v, s.shape);
    }
    return feeds;
  }

  /** The micro-batches packed to the graph's size and stacked: [A, B, T] tokens and [A, M] loss positions. */
  private tokenFeeds(shape: TrainingShape, microBatches: Example[][]): Record<string, ort.Tensor> {
    const { microBatches: A, batch: B, tokens: T, rows: M } = shape;
    const total = microBatches.reduce((n, mb) => n + labelledCount(mb), 0);
    const packed = Array.from({ length: A }, (_, a) => packBatch(microBatches[a] ?? [], this.model.padId, Math.max(1, total), shape));
    const stack = <T extends BigInt64Array | Float32Array>(part: (p: (typeof packed)[number]) => T, make: (n: number) => T) => {
      const out = make(A * part(packed[0]).length);
      packed.forEach((p, a) => out.set(part(p) as never, a * part(p).length));
      return out;
    };
    const int64 = (part: (p: (typeof packed)[number]) => BigInt64Array, dims: number[]) =>
      new ort.Tensor(
        'int64',
        stack(part, (n) => new BigInt64Array(n)),
        dims,
      );
    return {
      input_ids: int64((p) => p.inputIds, [A, B, T]),
      attention_mask: int64((p) => p.attentionMask, [A, B, T]),
      position_ids: int64((p) => p.positionIds, [A, B, T]),
      loss_rows: int64((p) => p.lossRows, [A, M]),
      loss_targets: int64((p) => p.lossTargets, [A, M]),
      loss_weights: new ort.Tensor(
        'float32',
        stack(
          (p) => p.lossWeights,
          (n) => new Float32Array(n),
        ),
        [A, M],
      ),
    };
  }
}
