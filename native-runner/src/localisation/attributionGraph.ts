import type { ModelConfig } from '../checkpoint/config';
import { Graph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { Decoder, type WeightBinder } from '../model/decoder';
import type { Hook } from '../model/sites';
import { appendBackward } from '../training/backward';

/**
 * Attribution patching: the first-order estimate of every head's patching effect from one forward and one
 * backward pass, (z_cf - z_ref) . d metric / d z at the last position, summed over the head's dimensions.
 * The backward pass is the training backend's reverse mode, taken with respect to the z values themselves.
 *
 * Inputs: the decoder's token inputs for rows [reference, counterfactual], padded to `tokens`, and
 * `metric_grad` [2, V], d metric / d last-position logits (zero for row 1). Outputs: `logits` [2, V] (the last
 * positions') and `attribution` [L, H].
 */
export function buildAttributionGraph(config: ModelConfig, weights: WeightBinder, tokens: number): Graph {
  const g = new Graph('pinpoint_attribution');
  const ids = g.input('input_ids', 'int64', [2, tokens]);
  const mask = g.input('attention_mask', 'int64', [2, tokens]);
  const positions = g.input('position_ids', 'int64', [2, tokens]);
  const z: string[] = [];
  const zReader: Hook = {
    site: 'attn.hook_z',
    apply: (_ctx, value) => {
      z.push(value);
      return value;
    },
  };
  const decoder = new Decoder(config, g, weights, 'float32', [zReader]);
  const { residual } = decoder.forward({ ids, mask, positions });
  const logits = decoder.logitsAt(residual, g.ints([tokens - 1, 2 * tokens - 1])); // [2, V]
  g.output('logits', logits, 'float32', [2, config.vocabSize]);
  const seed = g.input('metric_grad', 'float32', [2, config.vocabSize]);
  const grads = appendBackward(g, inferShapes(g), new Map([[logits, seed]]), z);
  const perLayer = z.map((zl) => {
    const last = (t: string) => g.op('Squeeze', [g.op('Slice', [t, g.ints([-1]), g.ints([tokens]), g.ints([1])]), g.ints([1])]); // [2, H, D]
    const row = (t: string, r: number) => g.op('Gather', [t, g.ints([r])], { axis: 0 }); // [1, H, D]
    const zLast = last(zl);
    const diff = g.op('Sub', [row(zLast, 1), row(zLast, 0)]);
    return g.op('ReduceSum', [g.op('Mul', [diff, row(last(grads.get(zl)!), 0)]), g.ints([2])], { keepdims: 0 }); // [1, H]
  });
  g.output('attribution', g.op('Concat', perLayer, { axis: 0 }), 'float32', [config.numLayers, config.numHeads]);
  return g;
}
