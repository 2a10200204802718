import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import type { Hook } from '../model/sites';
import type { InterventionKind, RowIndex } from './interventionKind';

/**
 * The freezing of path patching: at `ln1.hook_normalized`, the attention input of the marked layers is held at
 * another row's values, so that a patched head reaches the output only through the residual stream and the MLPs.
 * Inputs: `hold_source` [B] int64, `hold_layers` [B, L] bool.
 */
export interface AttentionHold {
  /** the row whose attention inputs are used */
  from: number;
  layers: number[];
}

export const attentionHold: InterventionKind<'hold'> = {
  field: 'hold',
  everyPosition: false,
  declare(g: Graph, c: ModelConfig): void {
    g.input('hold_source', 'int64', ['batch']);
    g.input('hold_layers', 'bool', ['batch', c.numLayers]);
  },
  hook: {
    site: 'ln1.hook_normalized',
    apply({ g, config: c, layer, batchTokens }, x) {
      const rows = g.op('Reshape', [x, g.op('Concat', [batchTokens, g.ints([c.hiddenSize])], { axis: 0 })]); // [B, T, C]
      const held = g.op('Unsqueeze', [g.op('Gather', ['hold_layers', g.ints([layer])], { axis: 1 }), g.ints([2])]); // [B, 1, 1]
      const mixed = g.op('Where', [held, g.op('Gather', [rows, 'hold_source'], { axis: 0 }), rows]);
      return g.op('Reshape', [mixed, g.ints([-1, c.hiddenSize])]);
    },
  } satisfies Hook,
  feeds(c: ModelConfig, rows: (AttentionHold | undefined)[], _newPositions: number, index: RowIndex): Record<string, ort.Tensor> {
    const B = rows.length;
    const layers = new Uint8Array(B * c.numLayers);
    rows.forEach((h, b) => {
      for (const l of h?.layers ?? []) layers[b * c.numLayers + index.layer(l)] = 1;
    });
    return {
      hold_source: new ort.Tensor(
        'int64',
        BigInt64Array.from(rows, (h, b) => BigInt(index.row(h?.from ?? b))),
        [B],
      ),
      hold_layers: new ort.Tensor('bool', layers, [B, c.numLayers]),
    };
  },
};
