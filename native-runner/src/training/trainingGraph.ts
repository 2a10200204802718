import type { ModelConfig } from '../checkpoint/config';
import { encodeTensor, Graph, onnxType } from '../onnx/graph';
import { ShapeState } from '../onnx/shapes';
import { Decoder, type WeightBinder } from '../model/decoder';
import { appendAdamW, clipByGlobalNorm, declareAdamWInputs, type AdamWHyper } from './adamw';
import { appendBackward } from './backward';
import { trainingBinder, type ParamSlice } from './parameters';
import type { Dtype } from '../../../src/protocol/protocol';

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

/** Half precision's exponent reaches 6e-8; bfloat16's is float32's, and it needs no scaling. */
export const LOSS_SCALE = { float32: 1, float16: 1024, bfloat16: 1 } as const;

export const blockInput = (kind: 'param' | 'm' | 'v', s: ParamSlice) => `${kind}:${s.id}`;
export const blockOutput = (kind: 'param_out' | 'm_out' | 'v_out' | 'grad', s: ParamSlice) => `${kind}:${s.id}`;

export interface TrainingGraphSpec {
  config: ModelConfig;
  frozen: WeightBinder;
  slices: ParamSlice[];
  shape: TrainingShape;
  dtype: Dtype;
  adamw: AdamWHyper;
  /** also output each block's gradient (for checks; it costs a copy of every gradient) */
  gradients: boolean;
}

export function buildTrainingGraph(spec: TrainingGraphSpec): Graph {
  const { slices, shape, dtype } = spec;
  const { microBatches: A, batch: B, tokens: T, rows: M } = shape;
  const g = new Graph('pinpoint_training');
  for (const name of TOKEN_INPUTS) g.input(name, 'int64', [A, B, T]);
  for (const name of LOSS_INPUTS) g.input(name, name === 'loss_weights' ? 'float32' : 'int64', [A, M]);
  for (const s of slices) for (const kind of ['param', 'm', 'v'] as const) g.input(blockInput(kind, s), 'float32', s.shape);
  declareAdamWInputs(g);
  const params = slices.map((s) => blockInput('param', s));
  const asUsed = new Map(slices.map((s, i) => [s.id, dtype === 'float32' ? params[i] : g.op('Cast', [params[i]], { to: onnxType(dtype) })]));
  const shapes = new ShapeState(g).infer(g.nodes);
  const { loss, grads } = A === 1 ? microBatch(g, spec, shapes, asUsed, g.scalar(0, 'int64')) : accumulated(g, spec, shapes, asUsed);
  g.output('loss', loss, 'float32', []);
  const { norm, clipped } = clipByGlobalNorm(g, grads);
  g.output('grad_norm', norm, 'float32', []);
  slices.forEach((s, i) => {
    const decays = s.decays && spec.adamw.weightDecay !== 0;
    const next = appendAdamW(g, spec.adamw, { param: params[i], grad: clipped[i], m: blockInput('m', s), v: blockInput('v', s), decays });
    g.output(blockOutput('param_out', s), next.param, 'float32', s.shape);
    g.output(blockOutput('m_out', s), next.m, 'float32', s.shape);
    g.output(blockOutput('v_out', s), next.v, 'float32', s.shape);
    if (spec.gradients) g.output(blockOutput('grad', s), grads[i], 'float32', s.shape);
  });
  return g;
}

const TOKEN_INPUTS = ['input_ids', 'attention_mask', 'position_ids'] as const;
const LOSS_INPUTS = ['loss_rows', 'loss_targets', 'loss_weights'] as const;

/**
 * Micro-batch `index` (an int64 scalar) written into `g`: its forward pass, its loss, and the gradients of the
 * blocks (float32, unscaled), by the blocks' order.
 */
function microBatch(
  g: Graph,
  spec: TrainingGraphSpec,
  outer: ShapeState,
  asUsed: Map<string, string>,
  index: string,
): { loss: string; grads: string[] } {
  const { config, slices, dtype } = spec;
  const forwardFrom = g.nodes.length;
  const pick = (x: string) => g.op('Gather', [x, index], { axis: 0 });
  const decoder = new Decoder(
    config,
    g,
    trainingBinder(slices, spec.frozen, (s) => asUsed.get(s.id)!),
    dtype,
  );
  const [ids, mask, positions] = TOKEN_INPUTS.map(pick);
  const [rows, targets, weights] = LOSS_INPUTS.map(pick);
  const { residual } = decoder.forward({ ids, mask, positions });
  const logits = decoder.logitsAt(residual, rows); // [M, V] float32
  const loss = crossEntropy(g, logits, targets, weights);
  const seed = g.op('Mul', [crossEntropyGradient(g, logits, targets, weights, config.vocabSize), g.scalar(LOSS_SCALE[dtype])]);
  const shapes = (g === outer.graph ? outer : new ShapeState(g, outer)).infer(g.nodes.slice(forwardFrom));
  const params = slices.map((s) => blockInput('param', s));
  const grads = appendBackward(g, shapes, new Map([[logits, seed]]), params, dtype === 'float32' ? undefined : onnxType(dtype));
  return { loss, grads: params.map((p) => (LOSS_SCALE[dtype] === 1 ? grads.get(p)! : g.op('Div', [grads.get(p)!, g.scalar(LOSS_SCALE[dtype])]))) };
}

/**
 * The micro-batches one after another in a Loop, which sums their losses and gradients: ONNX Runtime runs a node
 * as soon as its inputs exist, so micro-batches written side by side would all be in memory at once, while a
 * Loop's iterations run, and free their activations, in turn.
 */
function accumulated(g: Graph, spec: TrainingGraphSpec, shapes: ShapeState, asUsed: Map<string, string>): { loss: string; grads: string[] } {
  const { slices, shape } = spec;
  const body = g.subgraph('micro_batch');
  const index = body.input(body.fresh('index'), 'int64', []);
  body.input(body.fresh('condition'), 'bool', []);
  const lossSoFar = body.input(body.fresh('loss_sum'), 'float32', []);
  const gradsSoFar = slices.map((s) => body.input(body.fresh('grad_sum'), 'float32', s.shape));
  const step = microBatch(body, spec, shapes, asUsed, index);
  body.output(body.fresh('condition_out'), body.constant('true', 'bool', [], [1]), 'bool', []);
  body.output(body.fresh('loss_out'), body.op('Add', [lossSoFar, step.loss]), 'float32', []);
  slices.forEach((s, i) => body.output(body.fresh('grad_out'), body.op('Add', [gradsSoFar[i], step.grads[i]]), 'float32', s.shape));
  const zeros = slices.map((s) => g.op('ConstantOfShape', [g.ints(s.shape)], { value: encodeTensor('float32', [1], [0]) }));
  const outputs = [g.fresh('loss_sum'), ...slices.map(() => g.fresh('grad_sum'))];
  g.opMulti('Loop', [g.scalar(shape.microBatches, 'int64'), g.constant('true', 'bool', [], [1]), g.scalar(0), ...zeros], outputs, {
    body: { graph: body },
  });
  return { loss: outputs[0], grads: outputs.slice(1) };
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
