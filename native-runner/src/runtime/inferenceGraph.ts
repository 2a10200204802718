import type { ModelConfig } from '../checkpoint/config';
import { Graph, type Dim, type ElemType } from '../onnx/graph';
import { declareInterventionInputs, interventionHooks } from '../interventions/interventions';
import { Decoder, type KvCache, type WeightBinder } from '../model/decoder';
import { decodeLoop } from '../model/decodeLoop';
import { PatternReader, ZReader } from '../model/readers';
import { lmHeadBlocks } from '../model/weightFile';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * The one graph every inference job of a model runs, so that one session, and one copy of the weights, serves them
 * all: a forward pass over new tokens with every intervention and reader in place (interventions/, model/readers.ts:
 * fed to do nothing unless asked), logits and log-probabilities at the positions asked for, and greedy decoding.
 *
 * Decoding is where the two devices differ. On CUDA (`loop`) it runs inside the graph, an ONNX Loop over the decoder
 * (model/decodeLoop.ts), so the KV cache never leaves the device and each token costs B ids. On CPU (`steps`) the
 * graph takes and returns the KV cache and the runtime calls it once per token: the cache is in host memory either
 * way, and a graph in which every weight has exactly one matrix product lets ONNX Runtime keep each weight packed
 * for its CPU kernels in place of the mapped copy (a Loop body is a second product per weight); decoding a batch
 * of a few rows runs 4x faster packed.
 *
 * Inputs:
 * - `input_ids`, `position_ids` [B, T] and `attention_mask` [B, P + T]: the new tokens (runtime/batch.ts)
 * - steps: `past_key.{l}`, `past_value.{l}` [B, KV, P, D]; loop: `decode_steps` int64 scalar (iterations after the
 *   first token, which is the argmax at the logit rows, so generation reads the last positions, M = B) and
 *   `stop_ids` [E], the ids that stop a row
 * - `logit_rows` [M]: flattened positions b * T + t whose next-token distributions are computed
 * - `logprob_ids` [M, J]: ids whose logits and log-probabilities are returned at each of those positions
 * - every intervention's inputs, `z_rows` [Mz] and `pattern_head` [2] (layer, head)
 * Outputs:
 * - `logits` [M, V], `picked_logits` and `logprobs` [M, J] float32, `next_token` [M] int64
 * - steps: `present_key.{l}`, `present_value.{l}` [B, KV, P + T, D]; loop: `generated` [S, B] int64
 * - `z.{l}` [Mz, H*D] float32 per layer, `pattern` [T, P + T] (row 0, the chosen head)
 */
export type Decoding = 'loop' | 'steps';

export const INFERENCE_INPUTS = {
  ids: 'input_ids',
  mask: 'attention_mask',
  positions: 'position_ids',
  logitRows: 'logit_rows',
  logprobIds: 'logprob_ids',
  decodeSteps: 'decode_steps',
  stopIds: 'stop_ids',
  zRows: 'z_rows',
  patternHead: 'pattern_head',
  pastKey: (l: number) => `past_key.${l}`,
  pastValue: (l: number) => `past_value.${l}`,
} as const;

export const INFERENCE_OUTPUTS = {
  logits: 'logits',
  pickedLogits: 'picked_logits',
  logprobs: 'logprobs',
  nextToken: 'next_token',
  generated: 'generated',
  pattern: 'pattern',
  z: (l: number) => `z.${l}`,
  presentKey: (l: number) => `present_key.${l}`,
  presentValue: (l: number) => `present_value.${l}`,
} as const;

export function buildInferenceGraph(config: ModelConfig, weights: WeightBinder, dtype: Dtype, padId: number, decoding: Decoding): Graph {
  const c = config;
  const g = new Graph('pinpoint_inference');
  const I = INFERENCE_INPUTS;
  const O = INFERENCE_OUTPUTS;
  const cacheDims = (keys: string): Dim[] => ['batch', c.numKvHeads, keys, c.headDim];
  const output = (name: string, value: string, elemType: ElemType, dims: Dim[]) => g.output(name, value, elemType, dims);
  g.input(I.ids, 'int64', ['batch', 'new']);
  g.input(I.mask, 'int64', ['batch', 'keys']);
  g.input(I.positions, 'int64', ['batch', 'new']);
  g.input(I.logitRows, 'int64', ['reads']);
  g.input(I.logprobIds, 'int64', ['reads', 'ids']);
  g.input(I.zRows, 'int64', ['z_reads']);
  g.input(I.patternHead, 'int64', [2]);
  declareInterventionInputs(g, c, dtype);
  const past: KvCache | undefined =
    decoding === 'steps'
      ? {
          keys: Array.from({ length: c.numLayers }, (_, l) => g.input(I.pastKey(l), dtype, cacheDims('past'))),
          values: Array.from({ length: c.numLayers }, (_, l) => g.input(I.pastValue(l), dtype, cacheDims('past'))),
        }
      : undefined;

  const z = new ZReader(I.zRows);
  const pattern = new PatternReader(I.patternHead);
  const lmHead = decoding === 'steps' ? lmHeadBlocks(c).map((b) => b.name) : undefined;
  const decoder = new Decoder(c, g, weights, dtype, [...interventionHooks(false), z, pattern], lmHead);
  const pass = decoder.forward({ ids: I.ids, mask: I.mask, positions: I.positions, past });
  const logits = decoder.logitsAt(pass.residual, I.logitRows); // [M, V]
  const picked = g.op('GatherElements', [logits, I.logprobIds], { axis: 1 }); // [M, J]
  const next = g.op('ArgMax', [logits], { axis: -1, keepdims: 0 });
  output(O.logits, logits, 'float32', ['reads', c.vocabSize]);
  output(O.pickedLogits, picked, 'float32', ['reads', 'ids']);
  output(O.logprobs, logprobsAt(g, logits, picked), 'float32', ['reads', 'ids']);
  output(O.nextToken, next, 'int64', ['reads']);
  output(O.pattern, pattern.pattern, 'float32', ['new', 'keys']);
  z.values.forEach((value, l) => output(O.z(l), value, 'float32', ['z_reads', c.numHeads * c.headDim]));
  if (decoding === 'steps') {
    pass.cache.keys.forEach((k, l) => output(O.presentKey(l), k, dtype, cacheDims('keys')));
    pass.cache.values.forEach((v, l) => output(O.presentValue(l), v, dtype, cacheDims('keys')));
  } else {
    const steps = g.input(I.decodeSteps, 'int64', []);
    const stopIds = g.input(I.stopIds, 'int64', ['stops']);
    const generated = decodeLoop(
      g,
      { cache: pass.cache, first: next, mask: I.mask },
      {
        config: c,
        weights,
        dtype,
        hooks: interventionHooks(true),
        padId,
        steps,
        stopIds,
      },
    );
    output(O.generated, generated, 'int64', ['steps', 'batch']);
  }
  return g;
}

/** log softmax(logits) at the picked logits [M, J], in float32 with the max subtracted first. */
function logprobsAt(g: Graph, logits: string, picked: string): string {
  const max = g.op('ReduceMax', [logits, g.ints([-1])], { keepdims: 1 }); // [M, 1]
  const logSum = g.op('Log', [g.op('ReduceSum', [g.op('Exp', [g.op('Sub', [logits, max])]), g.ints([-1])], { keepdims: 1 })]);
  return g.op('Sub', [picked, g.op('Add', [max, logSum])]);
}
