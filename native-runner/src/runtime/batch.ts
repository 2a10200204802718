import * as ort from 'onnxruntime-node';

/**
 * Prompts of different lengths in one batch, padded on the left so that every row's newest token is at the
 * last position, with positions counted as transformers' generate counts them (pads get position 1).
 */
export interface TokenBatch {
  rows: number;
  /** [B, T] */
  inputIds: BigInt64Array;
  /** [B, K]: 1 for real tokens, over cached and new positions */
  attentionMask: BigInt64Array;
  /** [B, T] */
  positionIds: BigInt64Array;
  newPositions: number;
  keys: number;
}

/** `length` pads to a fixed size (graphs compiled for one shape); by default to the longest prompt. */
export function leftPadded(prompts: number[][], padId: number, length?: number): TokenBatch {
  if (prompts.length === 0) throw new Error('a batch needs at least one prompt');
  const longest = Math.max(...prompts.map((p) => p.length));
  if (longest === 0) throw new Error('a prompt must have at least one token');
  if (length !== undefined && length < longest) throw new RangeError(`a prompt of ${longest} tokens does not fit ${length}`);
  const T = length ?? longest;
  const B = prompts.length;
  const inputIds = new BigInt64Array(B * T).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(B * T);
  const positionIds = new BigInt64Array(B * T).fill(1n);
  prompts.forEach((prompt, b) => {
    const start = b * T + T - prompt.length;
    prompt.forEach((id, i) => {
      inputIds[start + i] = BigInt(id);
      attentionMask[start + i] = 1n;
      positionIds[start + i] = BigInt(i);
    });
  });
  return { rows: B, inputIds, attentionMask, positionIds, newPositions: T, keys: T };
}

/** The next step of incremental decoding: one new token per row after the `previous` batch's keys. */
export function nextStep(previous: TokenBatch, tokens: BigInt64Array): TokenBatch {
  const B = previous.rows;
  const K = previous.keys + 1;
  const attentionMask = new BigInt64Array(B * K);
  const positionIds = new BigInt64Array(B);
  for (let b = 0; b < B; b++) {
    let seen = 0n;
    for (let k = 0; k < K - 1; k++) {
      attentionMask[b * K + k] = previous.attentionMask[b * previous.keys + k];
      seen += attentionMask[b * K + k];
    }
    attentionMask[b * K + K - 1] = 1n;
    positionIds[b] = seen;
  }
  return { rows: B, inputIds: tokens, attentionMask, positionIds, newPositions: 1, keys: K };
}

export function tokenFeeds(batch: TokenBatch): Record<string, ort.Tensor> {
  const { rows: B, newPositions: T, keys: K } = batch;
  return {
    input_ids: new ort.Tensor('int64', batch.inputIds, [B, T]),
    attention_mask: new ort.Tensor('int64', batch.attentionMask, [B, K]),
    position_ids: new ort.Tensor('int64', batch.positionIds, [B, T]),
  };
}
