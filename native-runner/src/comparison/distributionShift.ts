import { leftPadded, tokenFeeds } from '../runtime/batch';
import type { Model } from '../runtime/model';

/**
 * How far tuning moved a model on text unrelated to the behaviour tuned: the mean over every position of every
 * prompt of KL(base || tuned) between the two next-token distributions, in nats.
 */
export async function meanTokenKl(base: Model, tuned: Model, prompts: number[][]): Promise<number> {
  let total = 0;
  let positions = 0;
  for (const ids of prompts) {
    const [p, q] = await Promise.all([allLogits(base, ids), allLogits(tuned, ids)]);
    const V = base.config.vocabSize;
    for (let t = 0; t < ids.length; t++) total += klDivergence(p.subarray(t * V, (t + 1) * V), q.subarray(t * V, (t + 1) * V));
    positions += ids.length;
  }
  return total / positions;
}

async function allLogits(model: Model, ids: number[]): Promise<Float32Array> {
  const { session } = await model.graph({ dtype: model.dtype, logits: 'all', nextToken: false, z: 'none', interventions: false, kvCache: false });
  return (await session.run(tokenFeeds(leftPadded([ids], model.padId)))).logits.data as Float32Array;
}

/** KL(softmax(p) || softmax(q)) from logits, in float64 with the log-sum-exp shift. */
export function klDivergence(p: Float32Array, q: Float32Array): number {
  const logP = logSoftmax(p);
  const logQ = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < p.length; i++) kl += Math.exp(logP[i]) * (logP[i] - logQ[i]);
  return Math.max(0, kl);
}

function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}
