import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../checkpoint/config';
import { float32ToFloat16 } from '../checkpoint/halfFloat';
import type { GraphDtype } from '../model/weightFile';

/** What one batch row does to the heads of its run; rows refer to each other by index within the batch. */
export interface HeadRef {
  layer: number;
  head: number;
}

export interface RowIntervention {
  /** replace these heads' z with row `from`'s at the given positions */
  patch?: { from: number; heads: HeadRef[]; positions: 'all' | 'last' };
  /** replace these heads' z at every position with the ablation values (zeros or means) */
  ablate?: HeadRef[];
  /** hold these layers' attention-block inputs at row `from`'s values (path patching) */
  hold?: { from: number; layers: number[] };
}

/**
 * The intervention inputs of a decoder graph for B rows of T new positions. `ablateValues` [L, H, D] defaults
 * to zeros (zero ablation); pass per-head means for mean ablation.
 */
export function interventionFeeds(
  config: ModelConfig,
  rows: RowIntervention[],
  newPositions: number,
  dtype: GraphDtype,
  ablateValues?: Float32Array,
): Record<string, ort.Tensor> {
  const { numLayers: L, numHeads: H, headDim: D } = config;
  const B = rows.length;
  const T = newPositions;
  const patchSource = new BigInt64Array(B);
  const holdSource = new BigInt64Array(B);
  const patchHeads = new Uint8Array(B * L * H);
  const ablateHeads = new Uint8Array(B * L * H);
  const patchPositions = new Uint8Array(B * T);
  const holdLayers = new Uint8Array(B * L);
  rows.forEach((row, b) => {
    patchSource[b] = BigInt(checkRow(row.patch?.from ?? b, B));
    holdSource[b] = BigInt(checkRow(row.hold?.from ?? b, B));
    for (const h of row.patch?.heads ?? []) patchHeads[(b * L + checkLayer(h.layer, L)) * H + checkHead(h.head, H)] = 1;
    for (const h of row.ablate ?? []) ablateHeads[(b * L + checkLayer(h.layer, L)) * H + checkHead(h.head, H)] = 1;
    if (row.patch) patchPositions.fill(1, row.patch.positions === 'all' ? b * T : (b + 1) * T - 1, (b + 1) * T);
    for (const l of row.hold?.layers ?? []) holdLayers[b * L + checkLayer(l, L)] = 1;
  });
  const values = ablateValues ?? new Float32Array(L * H * D);
  if (values.length !== L * H * D) throw new Error(`ablation values must be [${L}, ${H}, ${D}], got ${values.length} numbers`);
  return {
    patch_source: new ort.Tensor('int64', patchSource, [B]),
    patch_heads: new ort.Tensor('bool', patchHeads, [B, L, H]),
    patch_positions: new ort.Tensor('bool', patchPositions, [B, T]),
    ablate_heads: new ort.Tensor('bool', ablateHeads, [B, L, H]),
    ablate_values: dtype === 'float32'
      ? new ort.Tensor('float32', values, [L, H, D])
      : new ort.Tensor('float16', float32ToFloat16(values), [L, H, D]),
    hold_source: new ort.Tensor('int64', holdSource, [B]),
    hold_layers: new ort.Tensor('bool', holdLayers, [B, L]),
  };
}

function checkRow(row: number, rows: number): number {
  if (!Number.isInteger(row) || row < 0 || row >= rows) throw new RangeError(`row ${row} is not in a batch of ${rows}`);
  return row;
}

function checkLayer(layer: number, layers: number): number {
  if (!Number.isInteger(layer) || layer < 0 || layer >= layers) throw new RangeError(`layer ${layer} is not in 0..${layers - 1}`);
  return layer;
}

function checkHead(head: number, heads: number): number {
  if (!Number.isInteger(head) || head < 0 || head >= heads) throw new RangeError(`head ${head} is not in 0..${heads - 1}`);
  return head;
}
