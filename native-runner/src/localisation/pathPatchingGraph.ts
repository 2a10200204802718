import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import { DecoderBuilder, type LayerValues, type WeightBinder } from '../model/decoder';
import type { GraphDtype } from '../model/weightFile';

/**
 * Path patching of every head in one run, exploiting its structure. Rows 0 (reference) and 1 (counterfactual)
 * run the full prompt once. Patching head (l, h) at the last position while every later layer's attention
 * input is held at the reference values leaves every other position, and every attention output, exactly as
 * in the reference run; the only change is the head's contribution to the last position's residual stream:
 * delta = W_o[:, hD:(h+1)D] (z_cf - z_ref), which then passes through the MLPs of layers l..L-1 and the final
 * norm. So each head costs a handful of single-vector MLPs instead of a forward pass over the whole prompt.
 *
 * The tail keeps one row per head, in layer order: at layer j the rows of heads in earlier layers receive the
 * reference attention output (held), the heads of layer j are born from the reference residual plus their
 * delta, and all rows go through MLP j. Only the target tokens' logits are computed.
 *
 * Inputs: the decoder's `input_ids`, `attention_mask`, `position_ids` for the two rows (left-padded), and
 * `target_ids` [K]. Outputs: `logits` [2, V] (last position, both rows) and `patched_targets` [L*H, K]
 * (row l*H + h: head (l, h) path-patched).
 */
export function buildPathPatchingGraph(config: ModelConfig, weights: WeightBinder, dtype: GraphDtype): Graph {
  return new PathPatchingBuilder(config, weights, dtype).buildPathPatching();
}

class PathPatchingBuilder extends DecoderBuilder {
  private readonly layers: LayerValues[] = [];

  constructor(config: ModelConfig, weights: WeightBinder, dtype: GraphDtype) {
    super(config, weights, { dtype, logits: 'last', nextToken: false, z: 'none', interventions: false, kvCache: false });
  }

  protected override tap(layer: number, values: LayerValues): void {
    this.layers[layer] = { ...this.layers[layer], ...values };
  }

  buildPathPatching(): Graph {
    const { graph } = this.build();
    const { g, config: c } = this;
    let rows = '';
    for (let j = 0; j < c.numLayers; j++) {
      const { attnOut, residMid, z } = this.layers[j];
      const reference = (value: string) => g.op('Gather', [this.lastOf(value), g.ints([0])], { axis: 0 }); // [1, C]
      const born = g.op('Add', [reference(residMid!), this.toFloat32(this.headDeltas(j, z!))]); // [H, C]
      rows = j === 0 ? born : g.op('Concat', [g.op('Add', [rows, this.toFloat32(reference(attnOut!))]), born], { axis: 0 });
      const mlpIn = this.rmsNorm(rows, `model.layers.${j}.post_attention_layernorm.weight`);
      rows = g.op('Add', [rows, this.toFloat32(this.mlp(`model.layers.${j}`, mlpIn))]); // [(j+1)H, C]
    }
    const lmHead = this.weight(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    const targets = g.op('Gather', [lmHead, g.input('target_ids', 'int64', ['targets'])], { axis: 0 }); // [K, C]
    const logits = g.op('Gemm', [this.rmsNorm(rows, 'model.norm.weight'), targets], { transB: 1 });
    g.output('patched_targets', this.toFloat32(logits), 'float32', [c.numLayers * c.numHeads, 'targets']);
    return graph;
  }

  /** [N, C] -> the last position of each row, [B, C] */
  private lastOf(flat: string): string {
    const { g, config: c } = this;
    const rows = g.op('Reshape', [flat, g.op('Concat', [g.op('Shape', ['input_ids']), g.ints([c.hiddenSize])], { axis: 0 })]);
    return g.op('Squeeze', [this.lastPosition(rows), g.ints([1])]);
  }

  /**
   * Each head's change to the attention output at the last position, [H, C]: the differences
   * z_cf - z_ref [H, D] laid out block-diagonally as [H, H*D], times W_o^T, so W_o is used as stored.
   */
  private headDeltas(layer: number, z: string): string {
    const { g, config: c } = this;
    const last = g.op('Squeeze', [this.lastPosition(z), g.ints([1])]); // [B, H, D]
    const pick = (row: number) => g.op('Gather', [last, g.ints([row])], { axis: 0 }); // [1, H, D]
    const diff = g.op('Sub', [pick(1), pick(0)]);
    const eye = g.constant('eye', 'float32', [c.numHeads, c.numHeads, 1], identity(c.numHeads));
    const blocks = g.op('Mul', [diff, this.dt === 'float32' ? eye : g.op('Cast', [eye], { to: 10 })]); // [H, H, D]
    const flat = g.op('Reshape', [blocks, g.ints([c.numHeads, c.numHeads * c.headDim])]);
    return g.op('Gemm', [flat, this.weight(`model.layers.${layer}.self_attn.o_proj.weight`)], { transB: 1 });
  }
}

function identity(n: number): number[] {
  return Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));
}
