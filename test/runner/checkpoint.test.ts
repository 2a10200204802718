import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expectedTensorShapes, loadCheckpoint } from '../../native-runner/src/checkpoint/checkpoint';
import { parseConfig, type ModelConfig } from '../../native-runner/src/checkpoint/config';
import { readTensor, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../native-runner/src/checkpoint/safetensors';

import { REFERENCE_DIR as REFERENCE } from '../fixtures/paths';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-checkpoint-'));
}

/** Matches a CheckpointError `${file}: ...${problem}`, so every refusal is checked to name its file. */
function refusal(file: string, problem: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^CheckpointError: ${escape(file)}: .*${problem}`);
}

function modelConfig(overrides: Partial<ModelConfig>): ModelConfig {
  return {
    modelType: 'llama',
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 100,
    rmsNormEps: 1e-6,
    rope: { type: 'default', theta: 10000 },
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    qkNorm: false,
    tieWordEmbeddings: false,
    slidingWindows: [null, null],
    maxPositionEmbeddings: 256,
    bosTokenId: null,
    eosTokenIds: [],
    padTokenId: null,
    dtype: 'float32',
    ...overrides,
  };
}

/** config.json in the layout of the reference qwen2 checkpoint, at a tiny size. */
const TINY_QWEN2_CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: null,
  dtype: 'float32',
  eos_token_id: null,
  hidden_act: 'silu',
  hidden_size: 8,
  intermediate_size: 16,
  layer_types: ['full_attention', 'full_attention'],
  max_position_embeddings: 32,
  max_window_layers: 28,
  model_type: 'qwen2',
  num_attention_heads: 2,
  num_hidden_layers: 2,
  num_key_value_heads: 1,
  pad_token_id: null,
  rms_norm_eps: 1e-6,
  rope_parameters: { rope_theta: 1000000.0, rope_type: 'default' },
  sliding_window: null,
  tie_word_embeddings: true,
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 12,
};

interface TinyOptions {
  dtype?: TensorToWrite['dtype'];
  /** shapes to write instead of the expected ones */
  shapes?: Record<string, number[]>;
  omit?: string[];
  extra?: Record<string, number[]>;
  maxShardBytes?: number;
}

/** A checkpoint whose tensors come from expectedTensorShapes, bent as the options say. */
function writeTinyCheckpoint(options: TinyOptions = {}): string {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_QWEN2_CONFIG, null, 2));
  const shapes = expectedTensorShapes(parseConfig(TINY_QWEN2_CONFIG, path.join(dir, 'config.json')));
  for (const name of options.omit ?? []) shapes.delete(name);
  for (const [name, shape] of Object.entries({ ...options.shapes, ...options.extra })) shapes.set(name, shape);
  const tensors = [...shapes].map(([name, shape], t): TensorToWrite => ({
    name,
    dtype: options.dtype ?? 'F32',
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(t * 100 + i)),
  }));
  if (options.maxShardBytes === undefined) writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  else writeShardedSafetensors(dir, tensors, options.maxShardBytes);
  return dir;
}

test('expectedTensorShapes names transformers tensors with [out, in] shapes', () => {
  const qwen3 = expectedTensorShapes(modelConfig({ headDim: 24, qkNorm: true, tieWordEmbeddings: true }));
  assert.equal(qwen3.size, 2 + 2 * 11);
  assert.deepEqual(qwen3.get('model.embed_tokens.weight'), [100, 64]);
  assert.deepEqual(qwen3.get('model.layers.1.self_attn.q_proj.weight'), [96, 64]);
  assert.deepEqual(qwen3.get('model.layers.1.self_attn.k_proj.weight'), [48, 64]);
  assert.deepEqual(qwen3.get('model.layers.1.self_attn.o_proj.weight'), [64, 96]);
  assert.deepEqual(qwen3.get('model.layers.0.self_attn.q_norm.weight'), [24]);
  assert.deepEqual(qwen3.get('model.layers.0.mlp.down_proj.weight'), [64, 128]);
  assert.equal(qwen3.has('lm_head.weight'), false);
  assert.equal(qwen3.has('model.layers.0.self_attn.q_proj.bias'), false);

  const biased = expectedTensorShapes(modelConfig({ qkvBias: true, oBias: true, mlpBias: true }));
  assert.equal(biased.size, 3 + 2 * (9 + 7));
  assert.deepEqual(biased.get('model.layers.0.self_attn.v_proj.bias'), [32]);
  assert.deepEqual(biased.get('model.layers.0.self_attn.o_proj.bias'), [64]);
  assert.deepEqual(biased.get('model.layers.0.mlp.up_proj.bias'), [128]);
  assert.deepEqual(biased.get('model.layers.0.mlp.down_proj.bias'), [64]);
  assert.deepEqual(biased.get('lm_head.weight'), [100, 64]);
});

for (const name of ['llama', 'qwen2', 'mistral', 'qwen3']) {
  test(`the reference ${name} checkpoint loads`, () => {
    const checkpoint = loadCheckpoint(path.join(REFERENCE, name));
    const expected = expectedTensorShapes(checkpoint.config);
    assert.deepEqual([...checkpoint.tensors.keys()], [...expected.keys()]);
    for (const [tensor, info] of checkpoint.tensors) assert.deepEqual(info.shape, expected.get(tensor), tensor);
    assert.deepEqual(checkpoint.weights.files, [path.join(REFERENCE, name, 'model.safetensors')]);
  });
}

test('the reference checkpoints carry the tensors their families imply', () => {
  assert.ok(loadCheckpoint(path.join(REFERENCE, 'llama')).tensors.has('lm_head.weight'));
  assert.deepEqual(loadCheckpoint(path.join(REFERENCE, 'qwen2')).tensors.get('model.layers.2.self_attn.k_proj.bias')?.shape, [32]);
  assert.deepEqual(loadCheckpoint(path.join(REFERENCE, 'qwen3')).tensors.get('model.layers.0.self_attn.k_norm.weight')?.shape, [24]);
  assert.deepEqual(loadCheckpoint(path.join(REFERENCE, 'mistral')).tensors.get('model.layers.0.self_attn.v_proj.weight')?.shape, [16, 64]);
});

test('a tiny checkpoint loads in F32, F16 and BF16', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const checkpoint = loadCheckpoint(writeTinyCheckpoint({ dtype }));
    assert.equal(checkpoint.tensors.size, 2 + 2 * 12);
    assert.equal(checkpoint.tensors.get('model.norm.weight')!.dtype, dtype);
  }
});

test('a sharded tiny checkpoint loads the same tensors as an unsharded one', () => {
  const single = loadCheckpoint(writeTinyCheckpoint());
  const sharded = loadCheckpoint(writeTinyCheckpoint({ maxShardBytes: 1024 }));
  assert.ok(sharded.weights.files.length > 1);
  assert.deepEqual([...sharded.tensors.keys()], [...single.tensors.keys()]);
  for (const [name, info] of single.tensors) assert.deepEqual(readTensor(sharded.tensors.get(name)!), readTensor(info), name);
});

test('a tensor of the wrong shape is refused, naming both shapes', () => {
  const dir = writeTinyCheckpoint({ shapes: { 'model.layers.0.self_attn.q_proj.weight': [6, 8] } });
  assert.throws(
    () => loadCheckpoint(dir),
    refusal(
      path.join(dir, 'model.safetensors'),
      'model\\.layers\\.0\\.self_attn\\.q_proj\\.weight has shape \\[6, 8\\] but config\\.json ' +
        '\\(num_attention_heads=2, head_dim=4, hidden_size=8\\) implies \\[8, 8\\]',
    ),
  );
});

test('a missing tensor is refused, naming it and where it was looked for', () => {
  const dir = writeTinyCheckpoint({ omit: ['model.layers.1.mlp.up_proj.weight'] });
  assert.throws(
    () => loadCheckpoint(dir),
    refusal(path.join(dir, 'model.safetensors'), 'has no tensor model\\.layers\\.1\\.mlp\\.up_proj\\.weight, which config\\.json implies'),
  );

  const sharded = writeTinyCheckpoint({ omit: ['model.layers.0.self_attn.q_proj.bias', 'model.norm.weight'], maxShardBytes: 1024 });
  assert.throws(
    () => loadCheckpoint(sharded),
    refusal(
      path.join(sharded, 'model.safetensors.index.json'),
      'has no 2 tensors model\\.layers\\.0\\.self_attn\\.q_proj\\.bias, model\\.norm\\.weight',
    ),
  );
});

test('tensors config.json does not account for are refused, except RoPE buffers and a tied lm_head', () => {
  const extra = writeTinyCheckpoint({ extra: { 'model.layers.2.input_layernorm.weight': [8] } });
  assert.throws(
    () => loadCheckpoint(extra),
    refusal(
      path.join(extra, 'model.safetensors'),
      'holds tensor model\\.layers\\.2\\.input_layernorm\\.weight, which config\\.json \\(model_type=qwen2, num_hidden_layers=2\\) does not account for',
    ),
  );

  const harmless = writeTinyCheckpoint({
    extra: { 'model.layers.0.self_attn.rotary_emb.inv_freq': [2], 'lm_head.weight': [12, 8] },
  });
  const checkpoint = loadCheckpoint(harmless);
  assert.equal(checkpoint.tensors.has('lm_head.weight'), false);
  assert.equal(checkpoint.tensors.has('model.layers.0.self_attn.rotary_emb.inv_freq'), false);
});

test('a weight stored as integers is refused', () => {
  const dir = writeTinyCheckpoint();
  const file = path.join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(file);
  // I32 has F32's element size, so only the dtype check can catch it; the first tensor is the embedding.
  bytes.write('"I32"', bytes.indexOf('"F32"'));
  fs.writeFileSync(file, bytes);
  assert.throws(() => loadCheckpoint(dir), refusal(file, 'model\\.embed_tokens\\.weight is stored as I32, expected one of F32, F16, BF16'));
});

test('a missing or broken config.json is refused', () => {
  const missing = writeTinyCheckpoint();
  fs.rmSync(path.join(missing, 'config.json'));
  assert.throws(() => loadCheckpoint(missing), refusal(path.join(missing, 'config.json'), 'not found'));

  const broken = writeTinyCheckpoint();
  fs.writeFileSync(path.join(broken, 'config.json'), '{"model_type": "qwen2",');
  assert.throws(() => loadCheckpoint(broken), refusal(path.join(broken, 'config.json'), 'is not valid JSON \\(.+\\)'));
});
