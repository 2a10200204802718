import * as ort from 'onnxruntime-node';

/**
 * Prompts of different lengths in one batch, padded on the left so that every row's newest token is at the
 * last position, with positions counted as transformers' generate counts them (pads get position 1).
 */
export interface TokenBatch {
  rows: number;
  /** [B, T] */
  inputIds: BigInt64Array;
  /** [B, T]: 1 for real tokens */
  attentionMask: BigInt64Array;
  /** [B, T] */
  positionIds: BigInt64Array;
  newPositions: number;
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
  return { rows: B, inputIds, attentionMask, positionIds, newPositions: T };
}

export function tokenFeeds(batch: TokenBatch): Record<string, ort.Tensor> {
  const { rows: B, newPositions: T } = batch;
  return {
    input_ids: new ort.Tensor('int64', batch.inputIds, [B, T]),
    attention_mask: new ort.Tensor('int64', batch.attentionMask, [B, T]),
    position_ids: new ort.Tensor('int64', batch.positionIds, [B, T]),
  };
}
