/**
 * Labelled examples packed for a training graph: right-padded to T tokens, and the positions whose next token
 * is labelled (label -100 is ignored; labels shift by one inside the loss, as in transformers), padded to M
 * entries of weight 0. Weights are 1 / `labelledTotal`, so the loss is the mean over every labelled token of a
 * (possibly accumulated) batch. Rows beyond the examples are all padding, with no labelled position.
 */

export interface Example {
  ids: number[];
  /** same length as ids; -100 where no loss is taken */
  labels: number[];
}

export interface PackedBatch {
  /** [B, T] each */
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  positionIds: BigInt64Array;
  /** [M] each */
  lossRows: BigInt64Array;
  lossTargets: BigInt64Array;
  lossWeights: Float32Array;
}

export const IGNORE_INDEX = -100;

export function labelledCount(examples: Example[]): number {
  return examples.reduce((n, e) => n + e.labels.slice(1).filter((l) => l !== IGNORE_INDEX).length, 0);
}

/** Sizes rounded up so that one compiled graph serves a whole run. */
export function bucket(n: number, quantum: number): number {
  return Math.max(quantum, Math.ceil(n / quantum) * quantum);
}

export function packBatch(
  examples: Example[],
  padId: number,
  labelledTotal: number,
  size: { batch: number; tokens: number; rows: number },
): PackedBatch {
  const { batch: B, tokens: T, rows: M } = size;
  if (examples.length > B) throw new RangeError(`${examples.length} examples do not fit a batch of ${B}`);
  const inputIds = new BigInt64Array(B * T).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(B * T);
  const positionIds = new BigInt64Array(B * T);
  const rows: number[] = [];
  const targets: number[] = [];
  examples.forEach((e, b) => {
    if (e.ids.length > T) throw new RangeError(`example of ${e.ids.length} tokens does not fit ${T}`);
    if (e.labels.length !== e.ids.length) throw new RangeError('labels and ids differ in length');
    e.ids.forEach((id, t) => {
      inputIds[b * T + t] = BigInt(id);
      attentionMask[b * T + t] = 1n;
      positionIds[b * T + t] = BigInt(t);
      const next = e.labels[t + 1];
      if (next !== undefined && next !== IGNORE_INDEX) {
        rows.push(b * T + t);
        targets.push(next);
      }
    });
  });
  if (rows.length > M) throw new RangeError(`${rows.length} labelled positions do not fit ${M}`);
  const lossWeights = new Float32Array(M);
  lossWeights.fill(1 / labelledTotal, 0, rows.length);
  const padded = (xs: number[]) => BigInt64Array.from({ length: M }, (_, i) => BigInt(xs[i] ?? 0));
  return { inputIds, attentionMask, positionIds, lossRows: padded(rows), lossTargets: padded(targets), lossWeights };
}
