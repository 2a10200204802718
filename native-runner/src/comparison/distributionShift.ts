import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { forward, readsPerRun } from '../runtime/forward';
import type { Model } from '../runtime/model';

/**
 * How far tuning moved a model on text unrelated to the behaviour tuned: KL(base || tuned) between the two
 * next-token distributions at every position of every prompt, in nats.
 *
 * The two models never hold their weights at once: the base model's logits are computed first and kept in a
 * scratch file (positions x V float32, removed afterwards), its session is released, and the tuned model is then
 * compared position by position against what the file holds.
 */

/** A model's logits at every position of every prompt, in a scratch file, to compare another model with. */
export class RecordedLogits {
  private constructor(
    private readonly file: string,
    private readonly prompts: number[][],
    private readonly vocab: number,
  ) {}

  static async record(base: Model, prompts: number[][]): Promise<RecordedLogits> {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-kl-')), 'base-logits.f32');
    const fd = fs.openSync(file, 'w');
    try {
      for (const ids of prompts) {
        for await (const logits of chunks(base, ids)) fs.writeSync(fd, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
      }
    } finally {
      fs.closeSync(fd);
    }
    return new RecordedLogits(file, prompts, base.config.vocabSize);
  }

  /** Mean over every position of KL(recorded || tuned). */
  async klOf(tuned: Model): Promise<number> {
    return meanOf((await this.klsOf(tuned)).flatMap((kls) => Array.from(kls)));
  }

  /** KL(recorded || tuned) at every position, per prompt. */
  async klsOf(tuned: Model): Promise<Float64Array[]> {
    if (tuned.config.vocabSize !== this.vocab)
      throw new RangeError(`the tuned model's vocabulary (${tuned.config.vocabSize}) is not the base model's (${this.vocab})`);
    const fd = fs.openSync(this.file, 'r');
    const all: Float64Array[] = [];
    let offset = 0;
    try {
      for (const ids of this.prompts) {
        const kls = new Float64Array(ids.length);
        let t = 0;
        for await (const q of chunks(tuned, ids)) {
          const p = new Float32Array(q.length);
          fs.readSync(fd, new Uint8Array(p.buffer), 0, p.byteLength, offset);
          offset += p.byteLength;
          for (let i = 0; i < q.length / this.vocab; i++, t++) {
            kls[t] = klDivergence(p.subarray(i * this.vocab, (i + 1) * this.vocab), q.subarray(i * this.vocab, (i + 1) * this.vocab));
          }
        }
        all.push(kls);
      }
    } finally {
      fs.closeSync(fd);
    }
    return all;
  }

  remove(): void {
    fs.rmSync(path.dirname(this.file), { recursive: true, force: true });
  }
}

export function meanOf(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** The logits of every position of one prompt, [positions, V] a chunk at a time. */
async function* chunks(model: Model, ids: number[]): AsyncGenerator<Float32Array> {
  const step = readsPerRun(model.config.vocabSize);
  for (let start = 0; start < ids.length; start += step) {
    const reads = Array.from({ length: Math.min(step, ids.length - start) }, (_, i) => ({ row: 0, position: start + i, ids: [] }));
    yield (await forward(model, { prompts: [ids], reads, fetchLogits: true })).logits!;
  }
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
