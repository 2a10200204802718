import type * as ort from 'onnxruntime-node';
import type { DecoderGraphOptions } from '../model/decoder';
import { leftPadded, tokenFeeds, type TokenBatch } from '../runtime/batch';
import type { Model } from '../runtime/model';
import { ablationFeeds, type Ablation } from './ablation';

/**
 * Log-probabilities read from forward passes: of chosen tokens right after a prompt, and of every token of a
 * continuation (what greedy generation produced) plus, at one position, of chosen alternatives. A continuation
 * is scored in two passes sharing a KV cache, the prompt (last-position logits) and then the continuation
 * (logits at its positions only), so that no [T, V] logits of a long prompt are ever materialised.
 */

/** Without ablation, the prompt pass is greedyGenerate's own graph, compiled once for both. */
export function promptGraph(model: Model, ablation?: Ablation): DecoderGraphOptions {
  return graphOptions(model, 'last', ablation);
}

function graphOptions(model: Model, logits: 'last' | 'all', ablation?: Ablation): DecoderGraphOptions {
  return { dtype: model.dtype, logits, nextToken: logits === 'last', z: 'none', interventions: ablation !== undefined, kvCache: true };
}

/** For each prompt, the log-probabilities of its `tokens` as the next token. */
export async function nextTokenLogprobs(model: Model, prompts: number[][], tokens: number[][], ablation?: Ablation): Promise<number[][]> {
  const { logits } = await promptPass(model, prompts, ablation);
  const V = model.config.vocabSize;
  return prompts.map((_, b) => logSoftmaxAt(logits.subarray(b * V, (b + 1) * V), tokens[b]));
}

export interface ContinuationToScore {
  prompt: number[];
  /** at least one token */
  continuation: number[];
  /** alternatives to read at one position of the continuation */
  probe: { position: number; tokens: number[] } | null;
}

export interface ContinuationScores {
  /** log-probability of each continuation token given everything before it */
  tokenLogprobs: number[];
  probe: number[] | null;
}

export async function scoreContinuations(model: Model, rows: ContinuationToScore[], ablation?: Ablation): Promise<ContinuationScores[]> {
  const V = model.config.vocabSize;
  const first = await promptPass(model, rows.map((r) => r.prompt), ablation);
  const rest = await continuationPass(model, rows, first, ablation);
  return rows.map((row, b) => {
    // position p's distribution: the prompt pass's for p = 0, else the continuation pass's at p - 1
    const at = (p: number) => (p === 0 || !rest
      ? first.logits.subarray(b * V, (b + 1) * V)
      : rest.logits.subarray((b * rest.positions + p - 1) * V, (b * rest.positions + p) * V));
    return {
      tokenLogprobs: row.continuation.map((token, p) => logSoftmaxAt(at(p), [token])[0]),
      probe: row.probe ? logSoftmaxAt(at(row.probe.position), row.probe.tokens) : null,
    };
  });
}

interface PromptPass {
  batch: TokenBatch;
  /** [B, V] */
  logits: Float32Array;
  cache: Record<string, ort.Tensor>;
}

async function promptPass(model: Model, prompts: number[][], ablation?: Ablation): Promise<PromptPass> {
  const { session } = await model.graph(graphOptions(model, 'last', ablation));
  const batch = leftPadded(prompts, model.padId);
  const feeds = { ...tokenFeeds(batch), ...model.emptyCache(batch.rows) };
  if (ablation) Object.assign(feeds, ablationFeeds(model, batch.rows, batch.newPositions, ablation));
  const out = await session.run(feeds);
  return { batch, logits: out.logits.data as Float32Array, cache: presentAsPast(out) };
}

/** Every continuation but its last token, after the cached prompt: [B, T, V] logits for positions 1.. of each. */
async function continuationPass(model: Model, rows: ContinuationToScore[], first: PromptPass, ablation?: Ablation): Promise<{ logits: Float32Array; positions: number } | null> {
  const batch = continuationBatch(rows, first.batch, model.padId);
  if (batch.newPositions === 0) return null;
  const { session } = await model.graph(graphOptions(model, 'all', ablation));
  const feeds = { ...tokenFeeds(batch), ...first.cache };
  if (ablation) Object.assign(feeds, ablationFeeds(model, batch.rows, batch.newPositions, ablation));
  const out = await session.run(feeds);
  return { logits: out.logits.data as Float32Array, positions: batch.newPositions };
}

/**
 * The continuations after the prompt batch's keys. Shorter ones are padded on the right, which no real position
 * of their row can attend to, so that every row keeps the prompt pass's left padding and positions.
 */
function continuationBatch(rows: ContinuationToScore[], prompts: TokenBatch, padId: number): TokenBatch {
  const T = Math.max(...rows.map((r) => r.continuation.length)) - 1;
  const { rows: B, keys: K0 } = prompts;
  const K = K0 + T;
  const inputIds = new BigInt64Array(B * T).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(B * K);
  const positionIds = new BigInt64Array(B * T);
  rows.forEach((row, b) => {
    const promptMask = prompts.attentionMask.subarray(b * K0, (b + 1) * K0);
    attentionMask.set(promptMask, b * K);
    const seen = promptMask.reduce((sum, m) => sum + m, 0n);
    for (let t = 0; t < T; t++) {
      const real = t < row.continuation.length - 1;
      if (real) inputIds[b * T + t] = BigInt(row.continuation[t]);
      attentionMask[b * K + K0 + t] = real ? 1n : 0n;
      positionIds[b * T + t] = seen + BigInt(t);
    }
  });
  return { rows: B, inputIds, attentionMask, positionIds, newPositions: T, keys: K };
}

function presentAsPast(out: ort.InferenceSession.ReturnType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(out)) {
    if (name.startsWith('present_')) past[name.replace('present_', 'past_')] = tensor;
  }
  return past;
}

/** log softmax(logits)[id] for each id, in float64. */
function logSoftmaxAt(logits: Float32Array, ids: number[]): number[] {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const logZ = max + Math.log(sum);
  return ids.map((id) => logits[id] - logZ);
}
