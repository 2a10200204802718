import * as ort from 'onnxruntime-node';
import type { HeadRef } from '../../../src/protocol/heads';
import { decodingInterventions, interventionFeeds, type RowIntervention } from '../interventions/interventions';
import { leftPadded, nextStep, tokenFeeds, type TokenBatch } from './batch';
import { INFERENCE_INPUTS as I, INFERENCE_OUTPUTS as O } from './inferenceGraph';
import type { Model } from './model';

/**
 * Runs of the inference graph (runtime/inferenceGraph.ts): what a job asks of a forward pass, in the terms of the
 * prompts (rows and positions within each prompt, before padding), turned into the graph's feeds, and the outputs
 * fetched back. Only what is asked for is fetched, and so copied out of ONNX Runtime.
 */
export interface ForwardRequest {
  /** token ids, one prompt per batch row */
  prompts: number[][];
  /** next-token distributions to read, and the ids whose logits and log-probabilities are wanted there */
  reads?: Read[];
  /** also return the reads' whole logits, [reads, V] */
  fetchLogits?: boolean;
  /** greedy decoding after every prompt (no `reads` then) */
  generate?: { maxNewTokens: number; stopIds: number[] };
  /** per row: what it does to the model */
  interventions?: RowIntervention[];
  /** head outputs to read, every layer's, at these positions */
  readZ?: Position[];
  /** one head's attention pattern over row 0's positions */
  pattern?: HeadRef;
}

export interface Position {
  row: number;
  /** 0-based within the row's own prompt */
  position: number;
}

export interface Read extends Position {
  ids: number[];
}

export interface ForwardResult {
  /** per read, the log-probability of each of its ids */
  logprobs: number[][];
  /** per read, the logit of each of its ids */
  logitsAt: number[][];
  /** [reads, V] */
  logits: Float32Array | null;
  /** per prompt, the greedy tokens up to and including a stop token */
  generated: number[][] | null;
  /** per layer [readZ, H*D] */
  z: Float32Array[] | null;
  /** [T, T] over row 0's padded positions */
  pattern: Float32Array | null;
}

/**
 * The most next-token distributions a job should read in one run, so that their [reads, V] logits and the
 * log-softmax's temporaries stay within 2^23 floats (32 MB) each, whatever the vocabulary: jobs that read more
 * (scoring continuations, the KL shift) run in parts.
 */
export function readsPerRun(vocab: number): number {
  return Math.max(1, Math.floor((1 << 23) / vocab));
}

export async function forward(model: Model, request: ForwardRequest): Promise<ForwardResult> {
  return forwardOn((await model.inference()).session, model, request);
}

/** The same on a given session of the model's inference graph (the run that measures where it was placed). */
export async function forwardOn(session: ort.InferenceSession, model: Model, request: ForwardRequest): Promise<ForwardResult> {
  const batch = leftPadded(request.prompts, model.padId);
  const reads = logitReads(request, batch);
  const out = await session.run(feeds(model, request, batch, reads), fetched(model, request));
  const J = Math.max(0, ...reads.map((r) => r.ids.length));
  const perRead = (name: string) => {
    const values = out[name].data as Float32Array;
    return reads.map((r, i) => Array.from(values.subarray(i * J, i * J + r.ids.length)));
  };
  return {
    logprobs: request.reads ? perRead(O.logprobs) : [],
    logitsAt: request.reads ? perRead(O.pickedLogits) : [],
    logits: request.fetchLogits ? (out[O.logits].data as Float32Array) : null,
    generated: request.generate ? await generatedTokens(session, model, request, batch, out) : null,
    z: request.readZ ? Array.from({ length: model.config.numLayers }, (_, l) => out[O.z(l)].data as Float32Array) : null,
    pattern: request.pattern ? (out[O.pattern].data as Float32Array) : null,
  };
}

/** The reads as flattened positions of the padded batch; generation reads every row's last position. */
function logitReads(request: ForwardRequest, batch: TokenBatch): { flat: number; ids: number[] }[] {
  if (request.generate) {
    if (request.reads) throw new Error('a generating run reads the last positions only');
    return request.prompts.map((_, row) => ({ flat: flatPosition(request, batch, { row, position: request.prompts[row].length - 1 }), ids: [] }));
  }
  // a run that reads nothing still computes one row of logits: the graph has no empty-batch path
  const reads = request.reads?.length ? request.reads : [{ row: 0, position: request.prompts[0].length - 1, ids: [] }];
  return reads.map((r) => ({ flat: flatPosition(request, batch, r), ids: r.ids }));
}

function flatPosition(request: ForwardRequest, batch: TokenBatch, { row, position }: Position): number {
  const length = request.prompts[row]?.length;
  if (length === undefined) throw new RangeError(`row ${row} is not in a batch of ${request.prompts.length}`);
  if (!Number.isInteger(position) || position < 0 || position >= length)
    throw new RangeError(`position ${position} is not in row ${row}'s ${length} tokens`);
  return row * batch.newPositions + batch.newPositions - length + position;
}

const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

function feeds(model: Model, request: ForwardRequest, batch: TokenBatch, reads: { flat: number; ids: number[] }[]): Record<string, ort.Tensor> {
  const rows = request.interventions ?? request.prompts.map(() => ({}));
  if (rows.length !== request.prompts.length) throw new RangeError(`${rows.length} interventions for ${request.prompts.length} prompts`);
  const J = Math.max(0, ...reads.map((r) => r.ids.length));
  const ids = reads.flatMap((r) => Array.from({ length: J }, (_, j) => r.ids[j] ?? r.ids[0] ?? 0));
  const zRows = (request.readZ ?? []).map((p) => flatPosition(request, batch, p));
  const pattern = request.pattern ?? { layer: 0, head: 0 };
  const feeds: Record<string, ort.Tensor> = {
    ...tokenFeeds(batch),
    [I.logitRows]: int64(
      reads.map((r) => r.flat),
      [reads.length],
    ),
    [I.logprobIds]: int64(ids, [reads.length, J]),
    [I.zRows]: int64(zRows, [zRows.length]),
    [I.patternHead]: int64([pattern.layer, pattern.head], [2]),
    ...interventionFeeds(model.config, rows, batch.newPositions, model.dtype),
  };
  if (model.decoding === 'steps') return { ...feeds, ...model.emptyCache(batch.rows) };
  const stopIds = request.generate?.stopIds.length ? request.generate.stopIds : [-1];
  return {
    ...feeds,
    [I.decodeSteps]: int64([Math.max(0, (request.generate?.maxNewTokens ?? 1) - 1)], []),
    [I.stopIds]: int64(stopIds, [stopIds.length]),
  };
}

function fetched(model: Model, request: ForwardRequest): string[] {
  const names: string[] = [];
  if (request.reads) names.push(O.logprobs, O.pickedLogits);
  if (request.fetchLogits) names.push(O.logits);
  if (request.generate) {
    names.push(O.nextToken);
    if (model.decoding === 'loop') names.push(O.generated);
    else for (let l = 0; l < model.config.numLayers; l++) names.push(O.presentKey(l), O.presentValue(l));
  }
  if (request.readZ) names.push(...Array.from({ length: model.config.numLayers }, (_, l) => O.z(l)));
  if (request.pattern) names.push(O.pattern);
  return names.length ? names : [O.nextToken];
}

/**
 * Each row's tokens, the first (the prompt pass's argmax) and those after it, up to and including its first stop
 * token: read from the graph's own loop, or decoded here one step per run with the cache the graph returns. A row
 * that has stopped is fed padding, as transformers' generate does (its stop token is fed once).
 */
async function generatedTokens(
  session: ort.InferenceSession,
  model: Model,
  request: ForwardRequest,
  prompt: TokenBatch,
  out: ort.InferenceSession.ReturnType,
): Promise<number[][]> {
  const { maxNewTokens, stopIds } = request.generate!;
  const rows = request.prompts.length;
  if (maxNewTokens <= 0) return Array.from({ length: rows }, () => []);
  const stops = new Set(stopIds);
  const tokens = Array.from(out[O.nextToken].data as BigInt64Array, (t) => [Number(t)]);
  const stopped = (b: number) => stops.has(tokens[b][tokens[b].length - 1]) || tokens[b].length >= maxNewTokens;
  if (model.decoding === 'loop') {
    const rest = out[O.generated].data as BigInt64Array; // [S, B]
    for (let s = 0; s < rest.length / rows; s++) for (let b = 0; b < rows; b++) if (!stopped(b)) tokens[b].push(Number(rest[s * rows + b]));
    return tokens;
  }
  const interventions = request.interventions && decodingInterventions(request.interventions);
  let batch = prompt;
  let cache = presentAsPast(model, out);
  const done = tokens.map((_, b) => stopped(b));
  let fed = BigInt64Array.from(tokens, (t) => BigInt(t[0]));
  while (!done.every(Boolean)) {
    batch = nextStep(batch, fed);
    const stepFeeds = {
      ...tokenFeeds(batch),
      ...cache,
      [I.logitRows]: int64(
        Array.from({ length: rows }, (_, b) => b),
        [rows],
      ),
      [I.logprobIds]: int64([], [rows, 0]),
      [I.zRows]: int64([], [0]),
      [I.patternHead]: int64([0, 0], [2]),
      ...interventionFeeds(model.config, interventions ?? Array.from({ length: rows }, () => ({})), 1, model.dtype),
    };
    const step = await session.run(stepFeeds, [O.nextToken, ...cacheOutputs(model)]);
    const next = step[O.nextToken].data as BigInt64Array;
    fed = new BigInt64Array(rows);
    next.forEach((token, b) => {
      if (done[b]) return void (fed[b] = BigInt(model.padId));
      tokens[b].push(Number(token));
      fed[b] = token;
      done[b] = stopped(b);
    });
    cache = presentAsPast(model, step);
  }
  return tokens;
}

function cacheOutputs(model: Model): string[] {
  return Array.from({ length: model.config.numLayers }, (_, l) => [O.presentKey(l), O.presentValue(l)]).flat();
}

function presentAsPast(model: Model, out: ort.InferenceSession.ReturnType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < model.config.numLayers; l++) {
    past[I.pastKey(l)] = out[O.presentKey(l)];
    past[I.pastValue(l)] = out[O.presentValue(l)];
  }
  return past;
}
