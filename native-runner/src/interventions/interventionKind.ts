import type * as ort from 'onnxruntime-node';
import type { HeadRef } from '../../../src/protocol/heads';
import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import type { Hook } from '../model/sites';
import type { RowIntervention } from './interventions';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * One kind of intervention, whole: the graph inputs it reads, the hook that applies it at its site, and the feeds
 * that say, per batch row, what it does (feeds for rows that do nothing leave the values as they are). A new kind
 * is a module that exports one of these and a field of `RowIntervention`.
 */
export interface InterventionKind<F extends keyof RowIntervention> {
  field: F;
  /** applies at every position, the decoded ones included; otherwise only to the prompt's positions */
  everyPosition: boolean;
  /** declares its inputs on the root graph, which the hook then reads from whichever subgraph it runs in */
  declare(g: Graph, config: ModelConfig, dtype: Dtype): void;
  hook: Hook;
  feeds(
    config: ModelConfig,
    rows: (RowIntervention[F] | undefined)[],
    newPositions: number,
    index: RowIndex,
    dtype: Dtype,
  ): Record<string, ort.Tensor>;
}

/** Checks the rows, layers and heads that interventions name against the batch and the model. */
export class RowIndex {
  constructor(
    private readonly rows: number,
    private readonly config: ModelConfig,
  ) {}

  row(r: number): number {
    return checked(r, this.rows, `row ${r} is not in a batch of ${this.rows}`);
  }

  layer(l: number): number {
    return checked(l, this.config.numLayers, `layer ${l} is not in 0..${this.config.numLayers - 1}`);
  }

  head(h: number): number {
    return checked(h, this.config.numHeads, `head ${h} is not in 0..${this.config.numHeads - 1}`);
  }
}

function checked(i: number, n: number, message: string): number {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(message);
  return i;
}

/** [B, L, H] as bytes: 1 where row b lists head (l, h). */
export function headMask(c: ModelConfig, perRow: HeadRef[][]): Uint8Array {
  const index = new RowIndex(perRow.length, c);
  const mask = new Uint8Array(perRow.length * c.numLayers * c.numHeads);
  perRow.forEach((heads, b) => {
    for (const h of heads) mask[(b * c.numLayers + index.layer(h.layer)) * c.numHeads + index.head(h.head)] = 1;
  });
  return mask;
}

/** Layer l's slice of a [B, L, H] head mask, shaped to broadcast over z [B, T, H, D]: [B, 1, H, 1]. */
export function layerHeads(g: Graph, mask: string, layer: number): string {
  return g.op('Unsqueeze', [g.op('Gather', [mask, g.ints([layer])], { axis: 1 }), g.ints([3])]);
}
