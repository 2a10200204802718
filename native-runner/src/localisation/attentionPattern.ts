import { forward } from '../runtime/forward';
import type { Model } from '../runtime/model';

export interface AttentionPattern {
  /** each token of the prompt decoded on its own */
  tokens: string[];
  /** [T * T], row-major: weights[q * T + k] is query position q's weight on key position k */
  weights: Float32Array;
}

/**
 * Head (layer, head)'s attention pattern over the prompt `ids`: softmax(q k^T / sqrt(D) + mask) of the forward
 * pass, float32 as the softmax runs, read at `attn.hook_pattern` by the inference graph (model/readers.ts). Row t
 * holds query position t's weights over the key positions (zero above the diagonal and outside a sliding window).
 */
export async function attentionPattern(model: Model, ids: number[], layer: number, head: number): Promise<AttentionPattern> {
  const { numLayers, numHeads } = model.config;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < numLayers && Number.isInteger(head) && head >= 0 && head < numHeads)) {
    throw new RangeError(`head ${layer}.${head} is not in this model (${numLayers} layers x ${numHeads} heads)`);
  }
  const { pattern } = await forward(model, { prompts: [ids], pattern: { layer, head } });
  return { tokens: ids.map((id) => model.tokenizer.decode([id])), weights: pattern! };
}
