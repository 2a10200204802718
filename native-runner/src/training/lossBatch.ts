import * as ort from 'onnxruntime-node';

/**
 * Labelled examples packed for a training graph: right-padded to T tokens, and the positions whose next token
 * is labelled (label -100 is ignored; labels shift by one inside the loss, as in transformers), padded to M
 * entries of weight 0. Weights are 1 / `labelledTotal`, so the loss is the mean over every labelled token of a
 * (possibly accumulated) batch.
 */

export interface Example {
  ids: number[];
  /** same length as ids; -100 where no loss is taken */
  labels: number[];
}

export interface LossBatch {
  batch: number;
  tokens: number;
  rows: number;
  feeds: Record<string, ort.Tensor>;
}

export const IGNORE_INDEX = -100;

export function labelledCount(examples: Example[]): number {
  return examples.reduce((n, e) => n + e.labels.slice(1).filter((l) => l !== IGNORE_INDEX).length, 0);
}

/** Sizes rounded up so that a handful of compiled graphs serve a whole run. */
export function bucket(n: number, quantum: number): number {
  return Math.max(quantum, Math.ceil(n / quantum) * quantum);
}

export function lossBatch(examples: Example[], padId: number, labelledTotal: number, size?: { tokens: number; rows: number }): LossBatch {
  const B = examples.length;
  const T = size?.tokens ?? Math.max(...examples.map((e) => e.ids.length));
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const mask = new BigInt64Array(B * T);
  const positions = new BigInt64Array(B * T);
  const rows: number[] = [];
  const targets: number[] = [];
  examples.forEach((e, b) => {
    if (e.ids.length > T) throw new RangeError(`example of ${e.ids.length} tokens does not fit ${T}`);
    if (e.labels.length !== e.ids.length) throw new RangeError('labels and ids differ in length');
    e.ids.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      mask[b * T + t] = 1n;
      positions[b * T + t] = BigInt(t);
      const next = e.labels[t + 1];
      if (next !== undefined && next !== IGNORE_INDEX) {
        rows.push(b * T + t);
        targets.push(next);
      }
    });
  });
  const M = size?.rows ?? rows.length;
  if (rows.length > M) throw new RangeError(`${rows.length} labelled positions do not fit ${M}`);
  const weights = new Float32Array(M);
  weights.fill(1 / labelledTotal, 0, rows.length);
  const padded = (xs: number[]) => BigInt64Array.from({ length: M }, (_, i) => BigInt(xs[i] ?? 0));
  return {
    batch: B,
    tokens: T,
    rows: M,
    feeds: {
      input_ids: new ort.Tensor('int64', ids, [B, T]),
      attention_mask: new ort.Tensor('int64', mask, [B, T]),
      position_ids: new ort.Tensor('int64', positions, [B, T]),
      loss_rows: new ort.Tensor('int64', padded(rows), [M]),
      loss_targets: new ort.Tensor('int64', padded(targets), [M]),
      loss_weights: new ort.Tensor('float32', weights, [M]),
    },
  };
}
