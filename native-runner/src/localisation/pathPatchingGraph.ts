import type { ModelConfig } from '../checkpoint/config';
import { Graph } from '../onnx/graph';
import { Decoder, type WeightBinder } from '../model/decoder';
import { PathPatchingTaps, pathPatchingTail, targetLogits } from './pathPatchingTail';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * The graph of path patching: the reference (row 0) and counterfactual (row 1) prompts in one forward pass, and the
 * tail that patches every head from it (pathPatchingTail.ts). Its tail multiplies by the MLP weights a second time,
 * so it is a graph of its own, which takes the inference graph's place while a localisation runs.
 *
 * Inputs: `input_ids`, `attention_mask`, `position_ids` [2, T] (left-padded) and `target_ids` [K]. Outputs:
 * `reference` [1, K], the unpatched reference's target logits, and `patched` [L*H, K] (row l*H + h: head (l, h)).
 */
export const PATH_PATCHING = { targets: 'target_ids', reference: 'reference', patched: 'patched' } as const;

export function buildPathPatchingGraph(config: ModelConfig, weights: WeightBinder, dtype: Dtype): Graph {
  const g = new Graph('pinpoint_path_patching');
  const [ids, mask, positions] = ['input_ids', 'attention_mask', 'position_ids'].map((name) => g.input(name, 'int64', [2, 'tokens']));
  const targets = g.input(PATH_PATCHING.targets, 'int64', ['targets']);
  const taps = new PathPatchingTaps();
  const decoder = new Decoder(config, g, weights, dtype, taps.hooks());
  const { residual } = decoder.forward({ ids, mask, positions });
  const last = g.op('Sub', [g.op('Squeeze', [g.op('Shape', [ids], { start: 1, end: 2 }), g.ints([0])]), g.scalar(1, 'int64')]);
  const referenceRow = g.op('Gather', [residual, g.op('Unsqueeze', [last, g.ints([0])])], { axis: 0 }); // [1, C]: row 0's last position
  g.output(PATH_PATCHING.reference, targetLogits(decoder, referenceRow, targets), 'float32', [1, 'targets']);
  g.output(PATH_PATCHING.patched, pathPatchingTail(decoder, taps, targets), 'float32', [config.numLayers * config.numHeads, 'targets']);
  return g;
}
