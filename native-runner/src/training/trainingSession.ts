import * as ort from 'onnxruntime-node';
import { fileWeights } from '../model/weightFile';
import type { Model } from '../runtime/model';
import type { PlacementReport } from '../runtime/session';
import type { LossBatch } from './lossBatch';
import type { ParamSlice } from './parameters';
import { buildTrainingGraph, type TrainingShape } from './trainingGraph';

export interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
}

/**
 * Training graphs of one model and one set of trainable blocks, compiled once per batch shape. The frozen weights
 * are the model's weight file; the blocks' current values are fed each step.
 */
export class TrainingSession {
  placement: PlacementReport | undefined;

  constructor(readonly model: Model, readonly slices: ParamSlice[]) {
    if (model.dtype !== 'float32') throw new Error('training graphs are float32');
  }

  async step(batch: LossBatch, params: Map<string, Float32Array>): Promise<StepResult> {
    const { session } = await this.session({ batch: batch.batch, tokens: batch.tokens, rows: batch.rows });
    const feeds: Record<string, ort.Tensor> = { ...batch.feeds };
    for (const s of this.slices) feeds[s.id] = new ort.Tensor('float32', params.get(s.id)!, s.shape);
    const out = await session.run(feeds);
    const grads = new Map(this.slices.map((s) => [s.id, out[`grad:${s.id}`].data as Float32Array]));
    return { loss: (out.loss.data as Float32Array)[0], grads };
  }

  private async session(shape: TrainingShape) {
    const compiled = await this.model.session(`train ${JSON.stringify(shape)} ${this.slices.map((s) => s.id).join(' ')}`,
      () => buildTrainingGraph(this.model.config, fileWeights(this.model.weights), this.slices, shape),
      async (session) => { await session.run(this.placeholderFeeds(shape)); });
    this.placement = compiled.placement;
    return compiled;
  }

  /** Feeds of the right shapes for the run that measures where ORT placed the nodes. */
  private placeholderFeeds(shape: TrainingShape): Record<string, ort.Tensor> {
    const { batch: B, tokens: T, rows: M } = shape;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]),
      position_ids: new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]),
      loss_rows: new ort.Tensor('int64', new BigInt64Array(M), [M]),
      loss_targets: new ort.Tensor('int64', new BigInt64Array(M), [M]),
      loss_weights: new ort.Tensor('float32', new Float32Array(M), [M]),
    };
    for (const s of this.slices) feeds[s.id] = new ort.Tensor('float32', new Float32Array(s.shape.reduce((a, b) => a * b, 1)), s.shape);
    return feeds;
  }
}
