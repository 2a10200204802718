import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import { DecoderBuilder, type LayerValues, type WeightBinder } from '../model/decoder';
import { fileWeights, type GraphDtype } from '../model/weightFile';
import { leftPadded, tokenFeeds } from '../runtime/batch';
import type { Model } from '../runtime/model';

/**
 * One head's attention pattern on one prompt: softmax(q k^T / sqrt(D) + mask) of the forward pass, float32 as the
 * softmax runs. The graph takes the head as inputs (`pattern_layer`, `pattern_head`, scalars) so that one compiled
 * graph serves every head: each layer keeps only that head's [T, T] slice, and the layer's is picked at the end,
 * so memory stays at L x T x T rather than every head's patterns.
 *
 * Inputs: the decoder's token inputs for one row. Output: `pattern` [1, T, T], row t the weights of query
 * position t over the key positions (zero above the diagonal and outside a sliding window).
 */
export function buildAttentionPatternGraph(config: ModelConfig, weights: WeightBinder, dtype: GraphDtype): Graph {
  return new AttentionPatternBuilder(config, weights, dtype).buildPattern();
}

class AttentionPatternBuilder extends DecoderBuilder {
  private readonly patterns: string[] = [];

  constructor(config: ModelConfig, weights: WeightBinder, dtype: GraphDtype) {
    super(config, weights, { dtype, logits: 'last', nextToken: false, z: 'none', interventions: false, kvCache: false });
  }

  protected override tap(layer: number, values: LayerValues): void {
    if (values.pattern) this.patterns[layer] = this.g.op('Gather', [values.pattern, 'pattern_head'], { axis: 1 }); // [1, T, T]
  }

  buildPattern(): Graph {
    const { g } = this;
    g.input('pattern_layer', 'int64', []);
    g.input('pattern_head', 'int64', []);
    const { graph } = this.build();
    const stacked = g.op('Concat', this.patterns.map((p) => g.op('Unsqueeze', [p, g.ints([1])])), { axis: 1 }); // [1, L, T, T]
    g.output('pattern', g.op('Gather', [stacked, 'pattern_layer'], { axis: 1 }), 'float32', [1, 'new', 'new']);
    return graph;
  }
}

export interface AttentionPattern {
  /** each token of the prompt decoded on its own */
  tokens: string[];
  /** [T * T], row-major: weights[q * T + k] is query position q's weight on key position k */
  weights: Float32Array;
}

/** Head (layer, head)'s attention pattern over the prompt `ids`. */
export async function attentionPattern(model: Model, ids: number[], layer: number, head: number): Promise<AttentionPattern> {
  const { numLayers, numHeads } = model.config;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < numLayers && Number.isInteger(head) && head >= 0 && head < numHeads)) {
    throw new RangeError(`head ${layer}.${head} is not in this model (${numLayers} layers x ${numHeads} heads)`);
  }
  const { session } = await model.session(`attention-pattern ${model.dtype}`,
    () => buildAttentionPatternGraph(model.config, fileWeights(model.weights), model.dtype),
    async (s) => { await s.run({ ...tokenFeeds(leftPadded([[model.padId]], model.padId)), ...headFeeds(0, 0) }); });
  const out = await session.run({ ...tokenFeeds(leftPadded([ids], model.padId)), ...headFeeds(layer, head) });
  return { tokens: ids.map((id) => model.tokenizer.decode([id])), weights: out.pattern.data as Float32Array };
}

function headFeeds(layer: number, head: number): Record<string, ort.Tensor> {
  return {
    pattern_layer: new ort.Tensor('int64', BigInt64Array.of(BigInt(layer)), []),
    pattern_head: new ort.Tensor('int64', BigInt64Array.of(BigInt(head)), []),
  };
}
