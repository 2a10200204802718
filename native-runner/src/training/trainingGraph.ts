import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { buildDecoderGraph, type WeightBinder } from '../model/decoder';
import { appendBackward } from './backward';
import { trainingBinder, type ParamSlice } from './parameters';

/**
 * One graph for a training step of fixed size: the decoder's forward pass on B x T tokens, the mean
 * next-token cross-entropy over M selected positions, and the gradients of exactly the trainable blocks.
 *
 * Inputs: the decoder's `input_ids`, `attention_mask`, `position_ids` [B, T]; `loss_rows` [M] (flattened
 * positions b * T + t whose next token is labelled), `loss_targets` [M] (that next token) and `loss_weights`
 * [M] (1 / number of labelled tokens in the whole, possibly accumulated, batch; 0 for padding entries); and one
 * input per trainable block. Outputs: `loss` and `grad:<block id>` for every block.
 */
export interface TrainingShape {
  batch: number;
  tokens: number;
  rows: number;
}

export function buildTrainingGraph(config: ModelConfig, frozen: WeightBinder, slices: ParamSlice[], shape: TrainingShape): Graph {
  const { graph: g, logits } = buildDecoderGraph(config, trainingBinder(slices, frozen), {
    dtype: 'float32', logits: 'rows', nextToken: false, z: 'none', interventions: false, kvCache: false, shape,
  });
  const targets = g.input('loss_targets', 'int64', [shape.rows]);
  const weights = g.input('loss_weights', 'float32', [shape.rows]);
  g.output('loss', crossEntropy(g, logits, targets, weights), 'float32', []);
  const dLogits = crossEntropyGradient(g, logits, targets, weights, config.vocabSize);
  const grads = appendBackward(g, inferShapes(g), new Map([[logits, dLogits]]), slices.map((s) => s.id));
  for (const s of slices) g.output(`grad:${s.id}`, grads.get(s.id)!, 'float32', s.shape);
  return g;
}

/** loss = -sum_m w_m log softmax(logits_m)[target_m] */
function crossEntropy(g: Graph, logits: string, targets: string, weights: string): string {
  const logProbs = g.op('LogSoftmax', [logits], { axis: -1 }); // [M, V]
  const picked = g.op('GatherElements', [logProbs, g.op('Unsqueeze', [targets, g.ints([1])])], { axis: 1 }); // [M, 1]
  const weighted = g.op('Mul', [g.op('Squeeze', [picked, g.ints([1])]), weights]);
  return g.op('Neg', [g.op('ReduceSum', [weighted], { keepdims: 0 })]);
}

/** d loss / d logits = w_m (softmax(logits_m) - onehot(target_m)), written directly rather than differentiated. */
function crossEntropyGradient(g: Graph, logits: string, targets: string, weights: string, vocab: number): string {
  const oneHot = g.op('OneHot', [targets, g.ints([vocab]), g.constant('onehot_values', 'float32', [2], [0, 1])], { axis: -1 });
  const diff = g.op('Sub', [g.op('Softmax', [logits], { axis: -1 }), oneHot]);
  return g.op('Mul', [diff, g.op('Unsqueeze', [weights, g.ints([1])])]);
}
