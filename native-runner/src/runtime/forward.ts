import * as ort from 'onnxruntime-node';
import type { HeadRef } from '../../../src/protocol/heads';
import { interventionFeeds, intervenes, type RowIntervention } from '../interventions/interventions';
import { leftPadded, tokenFeeds, type TokenBatch } from './batch';
import { INFERENCE_INPUTS as I, INFERENCE_OUTPUTS as O, zOutput } from './inferenceGraph';
import type { Model } from './model';

/**
 * One run of the inference graph (runtime/inferenceGraph.ts): what a job asks of a forward pass, in the terms of
 * the prompts (rows and positions within each prompt, before padding), turned into the graph's feeds, and the
 * outputs fetched back. Only what is asked for is fetched, and so copied out of ONNX Runtime.
 */
export interface ForwardRequest {
  /** token ids, one prompt per batch row */
  prompts: number[][];
  /** next-token distributions to read, and the ids whose log-probabilities are wanted there */
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
  /** path patching of every head, row 0 the reference and row 1 the counterfactual prompt: these targets' logits */
  pathTargets?: number[];
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
  /** [L*H, K]: row l*H + h is head (l, h) path-patched */
  pathPatched: Float32Array | null;
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
  const fetches = fetched(request, model.config.numLayers);
  const out = await session.run(feeds(model, request, batch, reads), fetches);
  const J = Math.max(0, ...reads.map((r) => r.ids.length));
  const perRead = (name: string) => {
    const values = out[name].data as Float32Array;
    return reads.map((r, i) => Array.from(values.subarray(i * J, i * J + r.ids.length)));
  };
  return {
    logprobs: request.reads ? perRead(O.logprobs) : [],
    logitsAt: request.reads ? perRead(O.pickedLogits) : [],
    logits: request.fetchLogits ? (out[O.logits].data as Float32Array) : null,
    generated: request.generate ? generatedTokens(out, request.prompts.length, request.generate) : null,
    z: request.readZ ? Array.from({ length: model.config.numLayers }, (_, l) => out[zOutput(l)].data as Float32Array) : null,
    pattern: request.pattern ? (out[O.pattern].data as Float32Array) : null,
    pathPatched: request.pathTargets ? (out[O.pathPatched].data as Float32Array) : null,
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
  if (!Number.isInteger(position) || position < 0 || position >= length) throw new RangeError(`position ${position} is not in row ${row}'s ${length} tokens`);
  return row * batch.newPositions + batch.newPositions - length + position;
}

function feeds(model: Model, request: ForwardRequest, batch: TokenBatch, reads: { flat: number; ids: number[] }[]): Record<string, ort.Tensor> {
  const { config } = model;
  const rows = request.interventions ?? request.prompts.map(() => ({}));
  if (rows.length !== request.prompts.length) throw new RangeError(`${rows.length} interventions for ${request.prompts.length} prompts`);
  const J = Math.max(0, ...reads.map((r) => r.ids.length));
  const ids = reads.flatMap((r) => Array.from({ length: J }, (_, j) => r.ids[j] ?? r.ids[0] ?? 0));
  const zRows = (request.readZ ?? []).map((p) => flatPosition(request, batch, p));
  const instrumented = intervenes(rows) || request.readZ !== undefined || request.pattern !== undefined || request.pathTargets !== undefined;
  const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
  const flag = (on: boolean) => new ort.Tensor('bool', Uint8Array.of(on ? 1 : 0), []);
  const pattern = request.pattern ?? { layer: 0, head: 0 };
  return {
    ...tokenFeeds(batch),
    [I.logitRows]: int64(reads.map((r) => r.flat), [reads.length]),
    [I.logprobIds]: int64(ids, [reads.length, J]),
    [I.decodeSteps]: int64([Math.max(0, (request.generate?.maxNewTokens ?? 1) - 1)], []),
    [I.stopIds]: int64(request.generate?.stopIds.length ? request.generate.stopIds : [-1], [request.generate?.stopIds.length || 1]),
    [I.instrumented]: flag(instrumented),
    [I.zRows]: int64(zRows, [zRows.length]),
    [I.patternHead]: int64([pattern.layer, pattern.head], [2]),
    [I.pathPatch]: flag(request.pathTargets !== undefined),
    [I.pathTargets]: int64(request.pathTargets ?? [], [request.pathTargets?.length ?? 0]),
    ...interventionFeeds(config, rows, batch.newPositions, model.dtype),
  };
}

function fetched(request: ForwardRequest, layers: number): string[] {
  const names: string[] = [];
  if (request.reads) names.push(O.logprobs, O.pickedLogits);
  if (request.fetchLogits) names.push(O.logits);
  if (request.generate) names.push(O.nextToken, O.generated);
  if (request.readZ) names.push(...Array.from({ length: layers }, (_, l) => zOutput(l)));
  if (request.pattern) names.push(O.pattern);
  if (request.pathTargets) names.push(O.pathPatched);
  return names.length ? names : [O.nextToken];
}

/** Each row's tokens: the first, then the loop's, up to and including the first stop token. */
function generatedTokens(out: ort.InferenceSession.ReturnType, rows: number, generate: { maxNewTokens: number; stopIds: number[] }): number[][] {
  if (generate.maxNewTokens <= 0) return Array.from({ length: rows }, () => []);
  const first = out[O.nextToken].data as BigInt64Array;
  const rest = out[O.generated].data as BigInt64Array; // [S, B]
  const steps = rest.length / rows;
  const stops = new Set(generate.stopIds);
  return Array.from({ length: rows }, (_, b) => {
    const tokens = [Number(first[b])];
    for (let s = 0; s < steps && !stops.has(tokens[tokens.length - 1]); s++) tokens.push(Number(rest[s * rows + b]));
    return tokens;
  });
}
