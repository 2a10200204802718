import type * as ort from 'onnxruntime-node';
import { leftPadded, nextStep, tokenFeeds, type TokenBatch } from './batch';
import { interventionFeeds, type HeadRef } from './interventions';
import type { Model } from './model';

export interface GreedyOptions {
  maxNewTokens: number;
  /** stop a row at the model's EOS tokens (default true); a stopped row is fed padding, as transformers does */
  stopAtEos?: boolean;
  /** knock these heads out at every position of every step (zeros, or the given [L, H, D] means) */
  ablate?: { heads: HeadRef[]; values?: Float32Array };
}

/**
 * Greedy decoding with a KV cache, batched over prompts of different lengths (left-padded). The argmax is taken
 * inside the graph so only B token ids per step come back, plus the cache.
 */
export async function greedyGenerate(model: Model, prompts: number[][], options: GreedyOptions): Promise<number[][]> {
  const { session } = await model.graph({ dtype: model.dtype, logits: 'last', nextToken: true, z: 'none', interventions: options.ablate !== undefined, kvCache: true });
  const ablation = (batch: TokenBatch) => (options.ablate
    ? interventionFeeds(model.config, prompts.map(() => ({ ablate: options.ablate!.heads })), batch.newPositions, model.dtype, options.ablate.values)
    : {});
  const eos = new Set(options.stopAtEos === false ? [] : eosIds(model));
  let batch: TokenBatch = leftPadded(prompts, model.padId);
  let cache = model.emptyCache(prompts.length);
  const generated: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  for (let step = 0; step < options.maxNewTokens && !done.every(Boolean); step++) {
    const out = await session.run({ ...tokenFeeds(batch), ...cache, ...ablation(batch) });
    const next = out.next_token.data as BigInt64Array;
    const fed = new BigInt64Array(prompts.length);
    next.forEach((token, b) => {
      if (done[b]) return void (fed[b] = BigInt(model.padId));
      generated[b].push(Number(token));
      fed[b] = token;
      if (eos.has(Number(token))) done[b] = true;
    });
    cache = presentAsPast(out);
    batch = nextStep(batch, fed);
  }
  return generated;
}

function eosIds(model: Model): number[] {
  const fromTokenizer = model.tokenizer.eosTokenId;
  return [...model.config.eosTokenIds, ...(fromTokenizer === null ? [] : [fromTokenizer])];
}

function presentAsPast(out: ort.InferenceSession.ReturnType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(out)) {
    if (name.startsWith('present_')) past[name.replace('present_', 'past_')] = tensor;
  }
  return past;
}
