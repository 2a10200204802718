import type { ModelConfig } from '../checkpoint/config';
import { encodeTensor, type Graph } from '../onnx/graph';
import { OnnxDataType } from '../onnx/schema';
import { Decoder, type KvCache, type WeightBinder } from './decoder';
import type { Hook } from './sites';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * Greedy decoding inside the graph: an ONNX Loop whose body is one decoder step, so that the KV cache stays where
 * the model runs and each generated token costs B ids, not the cache, in and out of host memory. It continues the
 * prompt pass that the graph has just run, from its cache and its first argmax token.
 *
 * As transformers' `generate` does, a row that has produced a stop token is fed padding from then on (the stop token
 * itself is fed once) with its attention mask still 1; the loop ends when every row has stopped or after `steps`
 * iterations. Each iteration's token is one row of the output [S, B], padding for stopped rows; the host cuts each
 * row after its first stop token.
 */
export interface DecodeStart {
  /** per layer [B, KV, K, D]: the prompt's keys and values */
  cache: KvCache;
  /** [B] int64: the argmax after each prompt, the first generated token */
  first: string;
  /** [B, K] int64: the prompt's attention mask */
  mask: string;
}

export interface DecodeSettings {
  config: ModelConfig;
  weights: WeightBinder;
  dtype: Dtype;
  /** the hooks that apply at every position (interventions such as knockout) */
  hooks: Hook[];
  padId: number;
  /** int64 scalar: iterations after the first token */
  steps: string;
  /** [E] int64: ids that stop a row (a value no token has, such as -1, stops none) */
  stopIds: string;
}

/** Appends the loop to `g` and returns its scan output, the tokens after the first: [S, B] int64. */
export function decodeLoop(g: Graph, start: DecodeStart, s: DecodeSettings): string {
  const done = stopped(g, start.first, s.stopIds);
  const positions = g.op('ReduceSum', [start.mask, g.ints([1])], { keepdims: 0 }); // [B]: the first token's position
  const carried = [start.first, start.mask, positions, done, ...start.cache.keys, ...start.cache.values];
  const body = decodeStep(g.subgraph('decode'), s);
  const outputs = carried.map(() => g.fresh('decoded'));
  const generated = g.fresh('generated');
  g.opMulti('Loop', [s.steps, g.op('Not', [allOf(g, done)]), ...carried], [...outputs, generated], { body: { graph: body } });
  return generated;
}

/**
 * The body: inputs (iteration, condition, token, mask, position, done, keys x L, values x L); outputs (condition,
 * the same carried values, and the scan output: this iteration's token).
 */
function decodeStep(body: Graph, s: DecodeSettings): Graph {
  const { config: c } = s;
  const L = c.numLayers;
  const cacheDims = ['batch', c.numKvHeads, 'keys', c.headDim];
  // one key more after the step: a dim of another name, or ONNX Runtime takes the two for the same size
  const nextCacheDims = ['batch', c.numKvHeads, 'next_keys', c.headDim];
  body.input(body.fresh('iteration'), 'int64', []);
  body.input(body.fresh('condition'), 'bool', []);
  const token = body.input(body.fresh('token'), 'int64', ['batch']);
  const pastMask = body.input(body.fresh('mask'), 'int64', ['batch', 'keys']);
  const position = body.input(body.fresh('position'), 'int64', ['batch']);
  const done = body.input(body.fresh('done'), 'bool', ['batch']);
  const past: KvCache = {
    keys: Array.from({ length: L }, () => body.input(body.fresh('past_key'), s.dtype, cacheDims)),
    values: Array.from({ length: L }, () => body.input(body.fresh('past_value'), s.dtype, cacheDims)),
  };
  const newKey = body.op('ConstantOfShape', [body.op('Concat', [body.op('Shape', [token]), body.ints([1])], { axis: 0 })], {
    value: encodeTensor('int64', [1], [1]),
  });
  const mask = body.op('Concat', [pastMask, newKey], { axis: 1 }); // [B, K + 1]
  const decoder = new Decoder(c, body, s.weights, s.dtype, s.hooks);
  const pass = decoder.forward({
    ids: body.op('Unsqueeze', [token, body.ints([1])]),
    mask,
    positions: body.op('Unsqueeze', [position, body.ints([1])]),
    past,
  });
  const next = body.op('ArgMax', [decoder.logitsAt(pass.residual)], { axis: -1, keepdims: 0 }); // [B]
  const emitted = body.op('Where', [done, body.scalar(s.padId, 'int64'), next]); // [B]
  const nowDone = body.op('Or', [done, stopped(body, next, s.stopIds)]);
  const out = (value: string, type: 'int64' | 'bool' | Dtype, dims: (string | number)[]) => body.output(body.fresh('out'), value, type, dims);
  out(body.op('Not', [allOf(body, nowDone)]), 'bool', []);
  out(emitted, 'int64', ['batch']);
  out(mask, 'int64', ['batch', 'next_keys']);
  out(body.op('Add', [position, body.scalar(1, 'int64')]), 'int64', ['batch']);
  out(nowDone, 'bool', ['batch']);
  for (const k of pass.cache.keys) out(k, s.dtype, nextCacheDims);
  for (const v of pass.cache.values) out(v, s.dtype, nextCacheDims);
  out(emitted, 'int64', ['batch']);
  return body;
}

/** [B] bool: whether each token is one of the stop ids. */
function stopped(g: Graph, tokens: string, stopIds: string): string {
  const matches = g.op('Equal', [g.op('Unsqueeze', [tokens, g.ints([1])]), g.op('Unsqueeze', [stopIds, g.ints([0])])]); // [B, E]
  return g.op('Cast', [g.op('ReduceMax', [g.op('Cast', [matches], { to: OnnxDataType.INT32 }), g.ints([1])], { keepdims: 0 })], {
    to: OnnxDataType.BOOL,
  });
}

/** bool scalar: every entry of [B] is true. */
function allOf(g: Graph, flags: string): string {
  return g.op('Cast', [g.op('ReduceMin', [g.op('Cast', [flags], { to: OnnxDataType.INT32 }), g.ints([0])], { keepdims: 0 })], {
    to: OnnxDataType.BOOL,
  });
}
