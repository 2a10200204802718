import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadCheckpoint } from '../../native-runner/src/checkpoint/checkpoint';
import { writeRandomCheckpoint } from '../../native-runner/src/checkpoint/randomCheckpoint';
import { interventionFeeds, type RowIntervention } from '../../native-runner/src/interventions/interventions';
import { forward } from '../../native-runner/src/runtime/forward';
import { greedyGenerate } from '../../native-runner/src/runtime/generate';
import { Model } from '../../native-runner/src/runtime/model';
import { naiveLogits } from '../fixtures/naiveForward';
import { REFERENCE_DIR, referenceCases, tempDir } from '../fixtures/paths';

/**
 * The ONNX decoder against the float64 oracle (test/fixtures/naiveForward.ts) on the variants the reference cases
 * do not cover, and decoding with the KV cache inside the graph and batching against the plain full pass.
 */

const TOKENIZER = path.join(REFERENCE_DIR, 'qwen2');
const work = tempDir('decoder');
before(() => {
  process.env.PINPOINT_CACHE = path.join(work, 'cache');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const BASE = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 420,
  rms_norm_eps: 1e-6,
  max_position_embeddings: 256,
  initializer_range: 0.2,
};

const VARIANTS: Record<string, Record<string, unknown>> = {
  'mistral sliding window 3, head_dim 12': {
    ...BASE,
    model_type: 'mistral',
    num_key_value_heads: 2,
    head_dim: 12,
    sliding_window: 3,
    rope_theta: 10000,
  },
  'llama linear RoPE, multi-head, attention and MLP biases (old "type" key)': {
    ...BASE,
    model_type: 'llama',
    num_key_value_heads: 4,
    attention_bias: true,
    mlp_bias: true,
    rope_theta: 10000,
    rope_scaling: { type: 'linear', factor: 4 },
  },
  'llama3 RoPE in rope_parameters, multi-query, BF16 weights': {
    ...BASE,
    model_type: 'llama',
    num_key_value_heads: 1,
    tie_word_embeddings: true,
    rope_parameters: {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8,
    },
  },
  'qwen2 sliding window on layer 1 only, F16 weights in shards': {
    ...BASE,
    model_type: 'qwen2',
    num_key_value_heads: 2,
    use_sliding_window: true,
    sliding_window: 4,
    max_window_layers: 1,
    rope_parameters: { rope_type: 'default', rope_theta: 1000000 },
  },
  'qwen3 q/k norm, head_dim 16 != hidden/heads': {
    ...BASE,
    model_type: 'qwen3',
    num_key_value_heads: 2,
    head_dim: 16,
    rope_theta: 1000000,
  },
};

function variantDir(name: string, config: Record<string, unknown>): string {
  const dir = path.join(work, name.replace(/[^a-z0-9]+/gi, '-'));
  if (!fs.existsSync(dir)) {
    const dtype = name.includes('BF16') ? 'BF16' : name.includes('F16') ? 'F16' : 'F32';
    writeRandomCheckpoint(dir, config, { seed: 7, dtype, tokenizerFrom: TOKENIZER, maxShardBytes: name.includes('shards') ? 40_000 : undefined });
  }
  return dir;
}

const PROMPT = [5, 17, 300, 42, 42, 9, 120, 77, 3, 250, 11];

function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let err = 0;
  for (let i = 0; i < actual.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  return err;
}

/** [rows * T, V]: every position of every row, after `interventions`. */
async function fullLogits(model: Model, ids: number[], interventions?: RowIntervention[]): Promise<Float32Array> {
  const rows = interventions?.length ?? 1;
  const reads = Array.from({ length: rows * ids.length }, (_, i) => ({ row: Math.floor(i / ids.length), position: i % ids.length, ids: [] }));
  return (await forward(model, { prompts: Array.from({ length: rows }, () => ids), reads, fetchLogits: true, interventions })).logits!;
}

function argmax(values: Float32Array): number {
  return values.reduce((best, x, i) => (x > values[best] ? i : best), 0);
}

for (const dir of referenceCases()) {
  test(`the float64 oracle reproduces transformers on reference ${path.basename(dir)}`, () => {
    const reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as { prompt_ids: number[]; logits: number[][] };
    const logits = naiveLogits(loadCheckpoint(dir), reference.prompt_ids);
    assert.ok(
      maxAbsDiff(
        logits.flatMap((v) => [...v]),
        reference.logits.flat(),
      ) < 1e-4,
    );
  });
}

for (const [name, config] of Object.entries(VARIANTS)) {
  test(`graph logits match the float64 oracle: ${name}`, async () => {
    const model = Model.load(variantDir(name, config), { device: 'cpu' });
    try {
      const expected = naiveLogits(model.checkpoint, PROMPT).flatMap((v) => [...v]);
      assert.ok(maxAbsDiff(await fullLogits(model, PROMPT), expected) < 1e-4);
    } finally {
      await model.dispose();
    }
  });
}

test('greedy decoding in the graph, with its KV cache, gives the tokens of a full pass per step (sliding window)', async () => {
  const name = 'mistral sliding window 3, head_dim 12';
  const model = Model.load(variantDir(name, VARIANTS[name]), { device: 'cpu' });
  try {
    const V = model.config.vocabSize;
    const prompt = PROMPT.slice(0, 4);
    const [decoded] = await greedyGenerate(model, [prompt], { maxNewTokens: 8, stopAtEos: false });
    const ids = [...prompt];
    for (let step = 0; step < 8; step++) {
      const logits = await fullLogits(model, ids);
      ids.push(argmax(logits.subarray((ids.length - 1) * V)));
    }
    assert.deepEqual(decoded, ids.slice(prompt.length));
  } finally {
    await model.dispose();
  }
});

test('a row stops at its first stop token, which it keeps; the others decode on', async () => {
  const name = 'qwen3 q/k norm, head_dim 16 != hidden/heads';
  const model = Model.load(variantDir(name, VARIANTS[name]), { device: 'cpu' });
  try {
    const prompts = [PROMPT, PROMPT.slice(2)];
    const [free, other] = await greedyGenerate(model, prompts, { maxNewTokens: 6, stopAtEos: false });
    const stop = free[2];
    const { generated } = await forward(model, { prompts, generate: { maxNewTokens: 6, stopIds: [stop] } });
    assert.deepEqual(generated![0], free.slice(0, free.indexOf(stop) + 1));
    const otherStop = other.indexOf(stop);
    assert.deepEqual(generated![1], otherStop < 0 ? other : other.slice(0, otherStop + 1));
  } finally {
    await model.dispose();
  }
});

test('batched greedy generation over prompts of different lengths equals one prompt at a time', async () => {
  const name = 'qwen3 q/k norm, head_dim 16 != hidden/heads';
  const model = Model.load(variantDir(name, VARIANTS[name]), { device: 'cpu' });
  try {
    const prompts = [PROMPT, PROMPT.slice(3), [7], PROMPT.slice(0, 6)];
    const batched = await greedyGenerate(model, prompts, { maxNewTokens: 6, stopAtEos: false });
    for (const [i, prompt] of prompts.entries()) {
      assert.deepEqual(batched[i], (await greedyGenerate(model, [prompt], { maxNewTokens: 6, stopAtEos: false }))[0]);
    }
  } finally {
    await model.dispose();
  }
});

test('zero ablation in the graph equals the oracle with those heads zeroed; patching from oneself changes nothing', async () => {
  const name = 'llama linear RoPE, multi-head, attention and MLP biases (old "type" key)';
  const model = Model.load(variantDir(name, VARIANTS[name]), { device: 'cpu' });
  try {
    const heads = [
      { layer: 0, head: 1 },
      { layer: 1, head: 3 },
    ];
    const logits = await fullLogits(model, PROMPT, [{ ablate: { heads } }, { patch: { from: 1, heads, positions: 'all' } }]);
    const half = logits.length / 2;
    const ablated = naiveLogits(model.checkpoint, PROMPT, { zeroHeads: heads }).flatMap((v) => [...v]);
    assert.ok(maxAbsDiff(logits.subarray(0, half), ablated) < 1e-4);
    assert.ok(maxAbsDiff(logits.subarray(half), await fullLogits(model, PROMPT)) === 0);
  } finally {
    await model.dispose();
  }
});

test('interventions name rows, layers and heads that exist', () => {
  const config = loadCheckpoint(path.join(REFERENCE_DIR, 'qwen2')).config;
  assert.throws(() => interventionFeeds(config, [{ ablate: { heads: [{ layer: 3, head: 0 }] } }], 4, 'float32'), /layer 3 is not in 0..2/);
  assert.throws(() => interventionFeeds(config, [{ ablate: { heads: [{ layer: 0, head: 4 }] } }], 4, 'float32'), /head 4 is not in 0..3/);
  assert.throws(
    () => interventionFeeds(config, [{ patch: { from: 1, heads: [], positions: 'last' } }], 4, 'float32'),
    /row 1 is not in a batch of 1/,
  );
  assert.throws(() => interventionFeeds(config, [{ hold: { from: 2, layers: [1] } }], 4, 'float32'), /row 2 is not in a batch of 1/);
});

test('ONNX Runtime reports the CPU provider for a CPU session', async () => {
  const model = Model.load(path.join(REFERENCE_DIR, 'mistral'), { device: 'cpu' });
  try {
    const placement = await model.placement();
    assert.equal(placement.provider, 'cpu');
    assert.ok((placement.nodesByProvider.CPUExecutionProvider ?? 0) > 10);
  } finally {
    await model.dispose();
  }
});
