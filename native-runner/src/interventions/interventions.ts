import type * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import type { Hook } from '../model/sites';
import { attentionHold, type AttentionHold } from './attentionHold';
import { headAblation, type HeadAblation } from './headAblation';
import { headPatch, type HeadPatch } from './headPatch';
import { RowIndex, type InterventionKind } from './interventionKind';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * What one batch row does to the model, as one value that evaluation, generation and localisation pass along
 * without knowing what is in it. Rows refer to each other by index within their batch.
 */
export interface RowIntervention {
  patch?: HeadPatch;
  ablate?: HeadAblation;
  hold?: AttentionHold;
}

const KINDS: InterventionKind<keyof RowIntervention>[] = [headPatch, headAblation, attentionHold];

/** Declares every kind's inputs on the inference graph. */
export function declareInterventionInputs(g: Graph, config: ModelConfig, dtype: Dtype): void {
  for (const kind of KINDS) kind.declare(g, config, dtype);
}

/** The hooks of every kind, in a fixed order (patch, then ablate, at the same site); `decoding`: those that apply there. */
export function interventionHooks(decoding: boolean): Hook[] {
  return KINDS.filter((k) => !decoding || k.everyPosition).map((k) => k.hook);
}

/** What the rows still do when decoding: the kinds that apply at every position, the others dropped. */
export function decodingInterventions(rows: RowIntervention[]): RowIntervention[] {
  const everyPosition = KINDS.filter((k) => k.everyPosition).map((k) => k.field);
  return rows.map((r) => Object.fromEntries(everyPosition.filter((f) => r[f] !== undefined).map((f) => [f, r[f]])));
}

/** The feeds of every kind for B rows of T new positions; a row with nothing set leaves the model as it is. */
export function interventionFeeds(config: ModelConfig, rows: RowIntervention[], newPositions: number, dtype: Dtype): Record<string, ort.Tensor> {
  const index = new RowIndex(rows.length, config);
  return Object.assign(
    {},
    ...KINDS.map((k) =>
      k.feeds(
        config,
        rows.map((r) => r[k.field]),
        newPositions,
        index,
        dtype,
      ),
    ),
  );
}

/** A JSON description of an intervention for run settings (values by hash), so that a resumed run can compare it. */
export function describeIntervention(row: RowIntervention, hash: (values: Float32Array) => string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(row, (_key, value) => (value instanceof Float32Array ? { sha256: hash(value) } : value)));
}
