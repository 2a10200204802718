import type { ModelConfig } from '../checkpoint/config';
import { Graph } from '../onnx/graph';
import { OnnxDataType } from '../onnx/schema';
import { ShapeState } from '../onnx/shapes';
import { Decoder, type WeightBinder } from '../model/decoder';
import type { GraphDtype } from '../model/weightFile';
import { appendAdamW, clipByGlobalNorm, declareAdamWInputs, type AdamWHyper } from './adamw';
import { appendBackward } from './backward';
import { trainingBinder, type ParamSlice } from './parameters';

/**
 * One optimizer step in one graph run, of fixed size: for each of A micro-batches, the decoder's forward pass on
 * B x T tokens, the mean next-token cross-entropy over M labelled positions and the gradients of exactly the
 * trainable blocks; their sum over the micro-batches, global-norm clipping, and AdamW on every block. The blocks
 * are float32 master values; in a float16 graph they are cast to half precision where the model uses them, the
 * loss is scaled by LOSS_SCALE so that small gradients survive half precision, and everything after the backward
 * pass is float32 again.
 *
 * Inputs: `input_ids`, `attention_mask`, `position_ids` [A, B, T]; `loss_rows` [A, M] (flattened positions b * T + t
 * whose next token is labelled), `loss_targets` [A, M] (that token) and `loss_weights` [A, M] (1 / labelled tokens
 * of the whole step, 0 for padding entries); per block `param:<id>`, `m:<id>`, `v:<id>`; the AdamW scalars.
 * Outputs: `loss` and `grad_norm` (before clipping), per block `param_out:<id>`, `m_out:<id>`, `v_out:<id>`, and,
 * when asked for, `grad:<id>` (summed over micro-batches, before clipping).
 */
export interface TrainingShape {
  microBatches: number;
  batch: number;
  tokens: number;
  rows: number;
}

export const LOSS_SCALE = { float32: 1, float16: 1024 } as const;

export const blockInput = (kind: 'param' | 'm' | 'v', s: ParamSlice) => `${kind}:${s.id}`;
export const blockOutput = (kind: 'param_out' | 'm_out' | 'v_out' | 'grad', s: ParamSlice) => `${kind}:${s.id}`;

export interface TrainingGraphSpec {
  config: ModelConfig;
  frozen: WeightBinder;
  slices: ParamSlice[];
  shape: TrainingShape;
  dtype: GraphDtype;
  adamw: AdamWHyper;
  /** also output each block's gradient (for checks; it costs a copy of every gradient) */
  gradients: boolean;
}

export function buildTrainingGraph(spec: TrainingGraphSpec): Graph {
  const { config, slices, shape, dtype } = spec;
  const { microBatches: A, batch: B, tokens: T, rows: M } = shape;
  const g = new Graph('pinpoint_training');
  const tokenInput = (name: string) => g.input(name, 'int64', [A, B, T]);
  const [ids, mask, positions] = ['input_ids', 'attention_mask', 'position_ids'].map(tokenInput);
  const rows = g.input('loss_rows', 'int64', [A, M]);
  const targets = g.input('loss_targets', 'int64', [A, M]);
  const weights = g.input('loss_weights', 'float32', [A, M]);
  for (const s of slices) for (const kind of ['param', 'm', 'v'] as const) g.input(blockInput(kind, s), 'float32', s.shape);
  declareAdamWInputs(g);
  const params = slices.map((s) => blockInput('param', s));
  const asUsed = new Map(slices.map((s, i) => [s.id, dtype === 'float32' ? params[i] : g.op('Cast', [params[i]], { to: OnnxDataType.FLOAT16 })]));
  const binder = trainingBinder(slices, spec.frozen, (s) => asUsed.get(s.id)!);
  const losses: string[] = [];
  const gradients: string[][] = [];
  const shapes = new ShapeState(g);
  // each micro-batch's backward pass is built before the next one's forward pass, so that ONNX Runtime, running
  // the nodes in about this order, frees one micro-batch's activations before the next one's exist
  for (let a = 0; a < A; a++) {
    const forwardFrom = g.nodes.length;
    const pick = (x: string) => g.op('Gather', [x, g.scalar(a, 'int64')], { axis: 0 });
    const decoder = new Decoder(config, g, binder, dtype);
    const { residual } = decoder.forward({ ids: pick(ids), mask: pick(mask), positions: pick(positions) });
    const logits = decoder.logitsAt(residual, pick(rows)); // [M, V] float32
    const [t, w] = [pick(targets), pick(weights)];
    losses.push(crossEntropy(g, logits, t, w));
    const seed = g.op('Mul', [crossEntropyGradient(g, logits, t, w, config.vocabSize), g.scalar(LOSS_SCALE[dtype])]);
    const grads = appendBackward(g, shapes.infer(g.nodes.slice(forwardFrom)), new Map([[logits, seed]]), params);
    gradients.push(params.map((p) => (LOSS_SCALE[dtype] === 1 ? grads.get(p)! : g.op('Div', [grads.get(p)!, g.scalar(LOSS_SCALE[dtype])]))));
  }
  const sum = (values: string[]) => (values.length === 1 ? values[0] : g.op('Sum', values));
  g.output('loss', sum(losses), 'float32', []);
  const summed = slices.map((_, i) => sum(gradients.map((perBlock) => perBlock[i])));
  const { norm, clipped } = clipByGlobalNorm(g, summed);
  g.output('grad_norm', norm, 'float32', []);
  slices.forEach((s, i) => {
    const decays = s.decays && spec.adamw.weightDecay !== 0;
    const next = appendAdamW(g, spec.adamw, { param: params[i], grad: clipped[i], m: blockInput('m', s), v: blockInput('v', s), decays });
    g.output(blockOutput('param_out', s), next.param, 'float32', s.shape);
    g.output(blockOutput('m_out', s), next.m, 'float32', s.shape);
    g.output(blockOutput('v_out', s), next.v, 'float32', s.shape);
    if (spec.gradients) g.output(blockOutput('grad', s), summed[i], 'float32', s.shape);
  });
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
