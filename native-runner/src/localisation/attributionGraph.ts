import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { DecoderBuilder, type LayerValues, type WeightBinder } from '../model/decoder';
import { appendBackward } from '../training/backward';

/**
 * Attribution patching: the first-order estimate of every head's patching effect from one forward and one
 * backward pass, (z_cf - z_ref) . d metric / d z at the last position, summed over the head's dimensions.
 * The backward pass is the training backend's reverse mode, taken with respect to the z values themselves.
 *
 * Inputs: the decoder's token inputs for rows [reference, counterfactual], padded to `tokens`, and
 * `metric_grad` [2, V], d metric / d last-position logits (zero for row 1). Output: `attribution` [L, H].
 */
export function buildAttributionGraph(config: ModelConfig, weights: WeightBinder, tokens: number): Graph {
  return new AttributionBuilder(config, weights, tokens).buildAttribution();
}

class AttributionBuilder extends DecoderBuilder {
  private readonly z: string[] = [];

  constructor(config: ModelConfig, weights: WeightBinder, tokens: number) {
    super(config, weights, {
      dtype: 'float32', logits: 'last', nextToken: false, z: 'none', interventions: false, kvCache: false,
      shape: { batch: 2, tokens, rows: 0 },
    });
  }

  protected override tap(layer: number, values: LayerValues): void {
    if (values.z) this.z[layer] = values.z;
  }

  buildAttribution(): Graph {
    const { graph: g, logits } = this.build();
    const { config: c } = this;
    const seed = g.input('metric_grad', 'float32', [2, c.vocabSize]);
    const grads = appendBackward(g, inferShapes(g), new Map([[logits, seed]]), this.z);
    const perLayer = this.z.map((z) => {
      const last = (t: string) => g.op('Squeeze', [this.lastPosition(t), g.ints([1])]); // [2, H, D]
      const row = (t: string, r: number) => g.op('Gather', [t, g.ints([r])], { axis: 0 }); // [1, H, D]
      const zLast = last(z);
      const diff = g.op('Sub', [row(zLast, 1), row(zLast, 0)]);
      return g.op('ReduceSum', [g.op('Mul', [diff, row(last(grads.get(z)!), 0)]), g.ints([2])], { keepdims: 0 }); // [1, H]
    });
    g.output('attribution', g.op('Concat', perLayer, { axis: 0 }), 'float32', [c.numLayers, c.numHeads]);
    return g;
  }
}
