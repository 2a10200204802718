import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig, type ModelConfig } from '../../native-runner/src/checkpoint/config';
import { CheckpointError } from '../../native-runner/src/checkpoint/safetensors';

import { REFERENCE_DIR as REFERENCE } from '../fixtures/paths';
const FILE = '/models/tiny/config.json';

function referenceConfig(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(REFERENCE, name, 'config.json'), 'utf8'));
}

/** A reference config.json with fields replaced; a field set to undefined is removed, as if never saved. */
function variant(name: string, changes: Record<string, unknown>): ModelConfig {
  return parseConfig(JSON.parse(JSON.stringify({ ...referenceConfig(name), ...changes })), FILE);
}

/** Asserts a CheckpointError that names the file and says exactly `message`. */
function assertRefused(name: string, changes: Record<string, unknown>, message: string): void {
  assert.throws(
    () => variant(name, changes),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.equal(err.message, `${FILE}: ${message}`);
      return true;
    },
  );
}

test('every reference config parses', () => {
  const names = fs.readdirSync(REFERENCE).filter((name) => fs.existsSync(path.join(REFERENCE, name, 'config.json')));
  assert.ok(names.length > 0);
  for (const name of names) {
    const file = path.join(REFERENCE, name, 'config.json');
    const config = parseConfig(referenceConfig(name), file);
    assert.equal(config.modelType, referenceConfig(name).model_type, file);
  }
});

test('reference llama: GQA, untied, llama3 RoPE from the older rope_theta + rope_scaling layout', () => {
  const file = path.join(REFERENCE, 'llama', 'config.json');
  assert.deepEqual(parseConfig(referenceConfig('llama'), file), {
    modelType: 'llama',
    hiddenSize: 64,
    intermediateSize: 160,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 420,
    rmsNormEps: 1e-5,
    rope: { type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 },
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    qkNorm: false,
    tieWordEmbeddings: false,
    slidingWindows: [null, null, null],
    maxPositionEmbeddings: 256,
    bosTokenId: null,
    eosTokenIds: [2],
    padTokenId: null,
    dtype: 'float32',
  });
});

test('reference qwen2: q/k/v biases without an o bias, tied embeddings, rope_parameters layout', () => {
  const config = parseConfig(referenceConfig('qwen2'), FILE);
  assert.equal(config.numHeads, 4);
  assert.equal(config.numKvHeads, 2);
  assert.equal(config.headDim, 16);
  assert.deepEqual([config.qkvBias, config.oBias, config.mlpBias, config.qkNorm], [true, false, false, false]);
  assert.equal(config.tieWordEmbeddings, true);
  assert.deepEqual(config.rope, { type: 'default', theta: 1000000 });
  assert.deepEqual(config.slidingWindows, [null, null, null]);
  assert.deepEqual(config.eosTokenIds, []);
  assert.equal(config.rmsNormEps, 1e-6);
});

test('reference mistral: one KV head, no biases, sliding_window null', () => {
  const config = parseConfig(referenceConfig('mistral'), FILE);
  assert.equal(config.numHeads, 4);
  assert.equal(config.numKvHeads, 1);
  assert.deepEqual([config.qkvBias, config.oBias, config.mlpBias, config.qkNorm], [false, false, false, false]);
  assert.deepEqual(config.slidingWindows, [null, null]);
  assert.equal(config.bosTokenId, 1);
  assert.deepEqual(config.eosTokenIds, [2]);
});

test('reference qwen3: head_dim 24 apart from hidden/heads, q/k norm, tied', () => {
  const config = parseConfig(referenceConfig('qwen3'), FILE);
  assert.equal(config.headDim, 24);
  assert.equal(config.hiddenSize / config.numHeads, 16);
  assert.equal(config.qkNorm, true);
  assert.deepEqual([config.qkvBias, config.oBias], [false, false]);
  assert.equal(config.tieWordEmbeddings, true);
});

test('older rope_scaling that says "type" instead of "rope_type"', () => {
  const config = variant('llama', { rope_theta: 10000, rope_scaling: { type: 'linear', factor: 2 } });
  assert.deepEqual(config.rope, { type: 'linear', theta: 10000, factor: 2 });
});

test('rope_scaling null with a top-level rope_theta is default RoPE', () => {
  assert.deepEqual(variant('llama', { rope_theta: 250000, rope_scaling: null }).rope, { type: 'default', theta: 250000 });
});

test('rope_theta defaults to 10000 when neither layout gives it', () => {
  assert.deepEqual(variant('llama', { rope_theta: undefined, rope_scaling: undefined }).rope, { type: 'default', theta: 10000 });
  assert.deepEqual(variant('qwen2', { rope_parameters: undefined }).rope, { type: 'default', theta: 10000 });
});

test('llama3 RoPE in the newer rope_parameters layout', () => {
  const config = variant('llama', {
    rope_theta: undefined,
    rope_scaling: undefined,
    rope_parameters: {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  });
  assert.deepEqual(config.rope, {
    type: 'llama3',
    theta: 500000,
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
});

test('llama3 without original_max_position_embeddings takes max_position_embeddings, as transformers fills it in', () => {
  const config = variant('llama', {
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 },
  });
  assert.equal(config.rope.originalMaxPositionEmbeddings, 256);
});

test('mistral sliding_window applies to every layer; absent means the 4096 transformers defaults to', () => {
  assert.deepEqual(variant('mistral', { sliding_window: 4096 }).slidingWindows, [4096, 4096]);
  assert.deepEqual(variant('mistral', { sliding_window: undefined }).slidingWindows, [4096, 4096]);
});

test('qwen2 use_sliding_window slides the layers from max_window_layers on', () => {
  const config = variant('qwen2', {
    layer_types: undefined,
    use_sliding_window: true,
    sliding_window: 128,
    max_window_layers: 1,
  });
  assert.deepEqual(config.slidingWindows, [null, 128, 128]);
});

test('qwen2 ignores sliding_window unless use_sliding_window', () => {
  const config = variant('qwen2', { layer_types: undefined, use_sliding_window: false, sliding_window: 128, max_window_layers: 0 });
  assert.deepEqual(config.slidingWindows, [null, null, null]);
});

test('qwen3 layer_types say which layers slide', () => {
  const config = variant('qwen3', {
    use_sliding_window: true,
    sliding_window: 64,
    layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
  });
  assert.deepEqual(config.slidingWindows, [64, null, 64]);
});

test('head_dim absent or null is hidden_size / num_attention_heads', () => {
  assert.equal(variant('llama', { head_dim: undefined }).headDim, 16);
  assert.equal(variant('mistral', { head_dim: null, hidden_size: 128 }).headDim, 32);
});

test('num_key_value_heads absent is multi-head attention', () => {
  const config = variant('llama', { num_key_value_heads: undefined });
  assert.equal(config.numKvHeads, config.numHeads);
});

test('llama attention_bias biases q, k, v and o; mlp_bias the MLP', () => {
  const config = variant('llama', { attention_bias: true, mlp_bias: true });
  assert.deepEqual([config.qkvBias, config.oBias, config.mlpBias], [true, true, true]);
});

test('qwen3 attention_bias biases q, k, v and o', () => {
  const config = variant('qwen3', { attention_bias: true });
  assert.deepEqual([config.qkvBias, config.oBias, config.mlpBias], [true, true, false]);
});

test('absent fields take the transformers defaults', () => {
  const config = variant('qwen2', {
    tie_word_embeddings: undefined,
    rms_norm_eps: undefined,
    hidden_act: undefined,
    dtype: undefined,
    max_position_embeddings: undefined,
    eos_token_id: undefined,
  });
  assert.equal(config.tieWordEmbeddings, false);
  assert.equal(config.rmsNormEps, 1e-6);
  assert.equal(config.dtype, 'float32');
  assert.equal(config.maxPositionEmbeddings, 32768);
  assert.deepEqual(config.eosTokenIds, []);
  assert.equal(variant('llama', { max_position_embeddings: undefined, rope_scaling: null }).maxPositionEmbeddings, 2048);
});

test('eos_token_id may be a list; torch_dtype is the older name of dtype', () => {
  const config = variant('llama', { eos_token_id: [2, 7], dtype: undefined, torch_dtype: 'bfloat16' });
  assert.deepEqual(config.eosTokenIds, [2, 7]);
  assert.equal(config.dtype, 'bfloat16');
});

test('refuses an unsupported model_type', () => {
  assertRefused('llama', { model_type: 'gpt2' }, 'model_type "gpt2" is not supported (supported: llama, mistral, qwen2, qwen3)');
  assertRefused('llama', { model_type: undefined }, 'model_type is missing (supported: llama, mistral, qwen2, qwen3)');
});

test('refuses RoPE types other than default, linear and llama3', () => {
  assertRefused(
    'llama',
    { rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } },
    'rope_scaling.rope_type "yarn" is not supported (supported: default, linear, llama3)',
  );
  assertRefused(
    'llama',
    { rope_scaling: { type: 'dynamic', factor: 2 } },
    'rope_scaling.type "dynamic" is not supported (supported: default, linear, llama3)',
  );
  assertRefused(
    'qwen2',
    { rope_parameters: { rope_type: 'longrope', rope_theta: 10000 } },
    'rope_parameters.rope_type "longrope" is not supported (supported: default, linear, llama3)',
  );
});

test('refuses scaled RoPE without its parameters', () => {
  assertRefused('llama', { rope_scaling: { type: 'linear' } }, 'rope_scaling.factor is missing; expected a positive number');
  assertRefused(
    'llama',
    { rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4 } },
    'rope_scaling.low_freq_factor is missing; expected a positive number',
  );
});

test('refuses a RoPE configuration per layer type', () => {
  assertRefused(
    'qwen2',
    {
      rope_parameters: {
        full_attention: { rope_type: 'default', rope_theta: 1000000 },
        sliding_attention: { rope_type: 'default', rope_theta: 10000 },
      },
    },
    'rope_parameters holds a separate RoPE configuration per layer type (full_attention, sliding_attention); ' +
      'only one RoPE configuration for all layers is supported',
  );
});

test('refuses an activation other than SiLU', () => {
  assertRefused('llama', { hidden_act: 'gelu' }, 'hidden_act "gelu" is not supported (supported: silu, swish)');
});

test('refuses KV heads that do not divide the query heads', () => {
  assertRefused(
    'llama',
    { num_key_value_heads: 3 },
    'num_key_value_heads 3 does not divide num_attention_heads 4: every KV head must serve a whole number of query heads',
  );
});

test('refuses a hidden size the heads do not divide when head_dim is not given', () => {
  assertRefused(
    'llama',
    { hidden_size: 66, head_dim: undefined },
    'hidden_size 66 is not divisible by num_attention_heads 4, and there is no head_dim to say the head size',
  );
});

test('refuses an unsupported dtype, naming the field it came from', () => {
  assertRefused('llama', { dtype: 'int8' }, 'dtype "int8" is not supported (supported: float32, float16, bfloat16)');
  assertRefused(
    'llama',
    { dtype: undefined, torch_dtype: 'float64' },
    'torch_dtype "float64" is not supported (supported: float32, float16, bfloat16)',
  );
});

test('refuses missing or malformed sizes', () => {
  assertRefused('llama', { vocab_size: undefined }, 'vocab_size is missing; expected a positive integer');
  assertRefused('llama', { intermediate_size: 0 }, 'intermediate_size must be a positive integer (got 0)');
  assertRefused('llama', { hidden_size: '64' }, 'hidden_size must be a positive integer (got "64")');
  assertRefused('llama', { rms_norm_eps: -1 }, 'rms_norm_eps must be a positive number (got -1)');
});

test('refuses sliding windows that are not positive integers or have no window', () => {
  assertRefused('mistral', { sliding_window: 0 }, 'sliding_window must be a positive integer (got 0)');
  assertRefused(
    'qwen3',
    { use_sliding_window: false, layer_types: ['sliding_attention', 'full_attention', 'full_attention'] },
    'layer_types[0] is "sliding_attention" but there is no sliding window (use_sliding_window is not true or sliding_window is null)',
  );
  assertRefused('qwen2', { layer_types: ['full_attention'] }, 'layer_types must be a list of num_hidden_layers (3) entries (got ["full_attention"])');
  assertRefused(
    'qwen2',
    { layer_types: ['full_attention', 'chunked_attention', 'full_attention'] },
    'layer_types[1] "chunked_attention" is not supported (supported: full_attention, sliding_attention)',
  );
});

test('refuses malformed token ids', () => {
  assertRefused('llama', { eos_token_id: 'two' }, 'eos_token_id must be a token id, a list of token ids or null (got "two")');
  assertRefused('llama', { bos_token_id: -1 }, 'bos_token_id must be a token id (a non-negative integer) or null (got -1)');
});

test('refuses a config.json that is not an object', () => {
  assert.throws(() => parseConfig([1, 2], FILE), { name: 'CheckpointError', message: `${FILE}: must hold a JSON object (got [1,2])` });
});
