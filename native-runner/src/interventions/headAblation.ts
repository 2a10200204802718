import * as ort from 'onnxruntime-node';
import type { HeadRef } from '../../../src/protocol/heads';
import type { ModelConfig } from '../checkpoint/config';
import { onnxType, type Graph } from '../onnx/graph';
import type { Hook } from '../model/sites';
import { headMask, layerHeads, type InterventionKind } from './interventionKind';

/**
 * Knocking heads out: at `attn.hook_z`, the marked heads' outputs are replaced at every position, the decoded
 * ones included, by zeros (zero ablation) or by given values such as their dataset means (mean ablation).
 * Inputs: `ablate_heads` [B, L, H] bool, `ablate_values` [L, H, D] float32 (cast to the graph's dtype inside it:
 * onnxruntime-node has no bfloat16 tensors to feed).
 */
export interface HeadAblation {
  heads: HeadRef[];
  /** [L, H, D] replacement values; zeros when absent. Every row of a batch uses the same values. */
  means?: Float32Array;
}

export const headAblation: InterventionKind<'ablate'> = {
  field: 'ablate',
  everyPosition: true,
  declare(g: Graph, c: ModelConfig): void {
    g.input('ablate_heads', 'bool', ['batch', c.numLayers, c.numHeads]);
    g.input('ablate_values', 'float32', [c.numLayers, c.numHeads, c.headDim]);
  },
  hook: {
    site: 'attn.hook_z',
    apply({ g, layer, dtype }, z) {
      const means = g.op('Gather', ['ablate_values', g.ints([layer])], { axis: 0 }); // [1, H, D]
      const values = dtype === 'float32' ? means : g.op('Cast', [means], { to: onnxType(dtype) });
      return g.op('Where', [layerHeads(g, 'ablate_heads', layer), values, z]);
    },
  } satisfies Hook,
  feeds(c: ModelConfig, rows: (HeadAblation | undefined)[]): Record<string, ort.Tensor> {
    const { numLayers: L, numHeads: H, headDim: D } = c;
    const given = [...new Set(rows.map((a) => a?.means).filter((m): m is Float32Array => m !== undefined))];
    if (given.length > 1) throw new RangeError('the rows of one batch must ablate with the same values');
    const values = given[0] ?? new Float32Array(L * H * D);
    if (values.length !== L * H * D) throw new RangeError(`ablation values must be [${L}, ${H}, ${D}], got ${values.length} numbers`);
    return {
      ablate_heads: new ort.Tensor(
        'bool',
        headMask(
          c,
          rows.map((a) => a?.heads ?? []),
        ),
        [rows.length, L, H],
      ),
      ablate_values: new ort.Tensor('float32', values, [L, H, D]),
    };
  },
};
