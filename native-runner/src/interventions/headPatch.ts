import * as ort from 'onnxruntime-node';
import type { HeadRef, Positions } from '../../../src/protocol/heads';
import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import type { Hook } from '../model/sites';
import { headMask, layerHeads, type InterventionKind, type RowIndex } from './interventionKind';

/**
 * Activation patching of heads: at `attn.hook_z`, the marked heads' outputs at the marked positions are replaced
 * with another row's, so that one run carries the reference row, the source row and every patched variant.
 * Inputs: `patch_source` [B] int64, `patch_heads` [B, L, H] bool, `patch_positions` [B, T] bool.
 */
export interface HeadPatch {
  /** the row whose z is copied in */
  from: number;
  heads: HeadRef[];
  positions: Positions;
}

export const headPatch: InterventionKind<'patch'> = {
  field: 'patch',
  everyPosition: false,
  declare(g: Graph, c: ModelConfig): void {
    g.input('patch_source', 'int64', ['batch']);
    g.input('patch_heads', 'bool', ['batch', c.numLayers, c.numHeads]);
    g.input('patch_positions', 'bool', ['batch', 'new']);
  },
  hook: {
    site: 'attn.hook_z',
    apply({ g, layer }, z) {
      const atPositions = g.op('Unsqueeze', ['patch_positions', g.ints([2, 3])]); // [B, T, 1, 1]
      const patched = g.op('And', [layerHeads(g, 'patch_heads', layer), atPositions]); // [B, T, H, 1]
      return g.op('Where', [patched, g.op('Gather', [z, 'patch_source'], { axis: 0 }), z]);
    },
  } satisfies Hook,
  feeds(c: ModelConfig, rows: (HeadPatch | undefined)[], newPositions: number, index: RowIndex): Record<string, ort.Tensor> {
    const B = rows.length;
    const T = newPositions;
    const source = BigInt64Array.from(rows, (p, b) => BigInt(index.row(p?.from ?? b)));
    const positions = new Uint8Array(B * T);
    rows.forEach((p, b) => {
      if (p) positions.fill(1, p.positions === 'all' ? b * T : (b + 1) * T - 1, (b + 1) * T);
    });
    return {
      patch_source: new ort.Tensor('int64', source, [B]),
      patch_heads: new ort.Tensor(
        'bool',
        headMask(
          c,
          rows.map((p) => p?.heads ?? []),
        ),
        [B, c.numLayers, c.numHeads],
      ),
      patch_positions: new ort.Tensor('bool', positions, [B, T]),
    };
  },
};
