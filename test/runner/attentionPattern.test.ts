import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readTensor } from '../../native-runner/src/checkpoint/safetensors';
import { attentionPattern } from '../../native-runner/src/localisation/attentionPattern';
import { Model } from '../../native-runner/src/runtime/model';
import { referenceCases, tempDir } from '../fixtures/paths';

/**
 * A head's attention pattern (the Head Map's view of a head) against transformers: the reference cases hold z, the
 * o_proj input, whose head h at position t is sum_k pattern[t, k] v[k] with v the head's value vectors. In layer 0
 * v is v_proj(RMSNorm(embedding)), which this test computes from the weights, so pattern x v must give the
 * reference z there. Every layer's pattern must be causal with rows summing to one.
 */

const work = tempDir('attention-pattern');
before(() => {
  process.env.PINPOINT_CACHE = path.join(work, 'cache');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Reference {
  prompt_ids: number[];
  /** [L][T][H*D] */
  z: number[][][];
}

/** v of layer 0: v_proj(RMSNorm(embedding of ids)), [T][KV*D]. */
function layerZeroValues(model: Model, ids: number[]): Float32Array[] {
  const c = model.config;
  const weight = (name: string) => readTensor(model.checkpoint.tensors.get(name)!);
  const embedding = weight('model.embed_tokens.weight');
  const norm = weight('model.layers.0.input_layernorm.weight');
  const vProj = weight('model.layers.0.self_attn.v_proj.weight'); // [KV*D, C]
  const bias = c.qkvBias ? weight('model.layers.0.self_attn.v_proj.bias') : null;
  const width = c.numKvHeads * c.headDim;
  return ids.map((id) => {
    const x = embedding.subarray(id * c.hiddenSize, (id + 1) * c.hiddenSize);
    let squares = 0;
    for (const e of x) squares += e * e;
    const scale = 1 / Math.sqrt(squares / c.hiddenSize + c.rmsNormEps);
    const v = new Float32Array(width);
    for (let o = 0; o < width; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < c.hiddenSize; i++) sum += vProj[o * c.hiddenSize + i] * x[i] * scale * norm[i];
      v[o] = sum;
    }
    return v;
  });
}

for (const dir of referenceCases()) {
  test(`${path.basename(dir)}: layer 0 patterns times values give transformers' z; every pattern is causal and sums to one`, async () => {
    const reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;
    const model = Model.load(dir, { device: 'cpu' });
    try {
      const { numLayers: L, numHeads: H, numKvHeads: KV, headDim: D } = model.config;
      const ids = reference.prompt_ids;
      const T = ids.length;
      const values = layerZeroValues(model, ids);
      let zError = 0;
      for (let layer = 0; layer < L; layer++) {
        for (let head = 0; head < H; head++) {
          const { tokens, weights } = await attentionPattern(model, ids, layer, head);
          assert.equal(tokens.length, T);
          assert.equal(weights.length, T * T);
          for (let q = 0; q < T; q++) {
            let sum = 0;
            for (let k = 0; k < T; k++) {
              const w = weights[q * T + k];
              if (k > q) assert.equal(w, 0, `${layer}.${head}: query ${q} attends to the later key ${k}`);
              sum += w;
            }
            assert.ok(Math.abs(sum - 1) < 1e-5, `${layer}.${head}: query ${q}'s weights sum to ${sum}`);
          }
          if (layer > 0) continue;
          // repeat_kv's order: query head h reads KV head floor(h / (H / KV))
          const kv = Math.floor(head / (H / KV));
          for (let q = 0; q < T; q++) {
            for (let d = 0; d < D; d++) {
              let z = 0;
              for (let k = 0; k <= q; k++) z += weights[q * T + k] * values[k][kv * D + d];
              zError = Math.max(zError, Math.abs(z - reference.z[0][q][head * D + d]));
            }
          }
        }
      }
      assert.ok(zError < 1e-4, `layer 0: pattern x v differs from transformers' z by ${zError}`);
    } finally {
      await model.dispose();
    }
  });
}

test("a head outside the model is refused, naming the model's shape", async () => {
  const model = Model.load(referenceCases()[0], { device: 'cpu' });
  try {
    const { numLayers: L, numHeads: H } = model.config;
    await assert.rejects(attentionPattern(model, [1, 2, 3], L, 0), new RegExp(`head ${L}\\.0 is not in this model \\(${L} layers x ${H} heads\\)`));
  } finally {
    await model.dispose();
  }
});
