import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCheckpoint } from '../native-runner/src/checkpoint/checkpoint';
import { spawnSync } from 'node:child_process';
import { writeCheckpointFrame, writeRandomCheckpoint } from '../native-runner/src/checkpoint/randomCheckpoint';

/**
 * Random checkpoints of real models' shapes, for benchmarks (no model hub is reachable): written once in BF16, as
 * the Hub ships them, and kept in $PINPOINT_BENCH_MODELS (default: the system's temporary folder) for later runs.
 * Their tokenizer is the reference qwen2 case's, whose ids all lie inside any of these vocabularies. Shapes of more
 * than TORCH_WRITES parameters, or all with PINPOINT_BENCH_WEIGHTS=torch, get their weights from torch
 * (bench/peer/random_weights.py): the same distribution, other draws, in seconds rather than minutes.
 */
// resolved from this file's folder, which is the project's bench/ or, for the GPU machine's bundles, its dist/
const TOKENIZER = path.resolve(__dirname, '..', 'test', 'fixtures', 'reference', 'qwen2');
const PYTHON = process.env.PINPOINT_TORCH_PYTHON ?? '/usr/bin/python3';
const TORCH_WRITES = 2e9;
const QWEN2 = { model_type: 'qwen2', rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, max_position_embeddings: 32768 };

export const SHAPES = {
  /** 28M parameters: a small model, where per-run overheads weigh */
  '30m': {
    ...QWEN2,
    hidden_size: 512,
    intermediate_size: 1536,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    vocab_size: 8192,
  },
  /** Qwen2.5-0.5B-Instruct */
  '0.5b': {
    ...QWEN2,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    vocab_size: 151936,
  },
  /** Qwen2.5-1.5B-Instruct */
  '1.5b': {
    ...QWEN2,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    vocab_size: 151936,
  },
  /** Llama-3.1-8B-Instruct */
  '8b': {
    model_type: 'llama',
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    vocab_size: 128256,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    max_position_embeddings: 131072,
    rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  },
} as const;

export type ShapeName = keyof typeof SHAPES;

export function shapeName(value: string | undefined, fallback: ShapeName): ShapeName {
  const name = (value ?? fallback) as ShapeName;
  if (!(name in SHAPES)) throw new Error(`unknown shape "${value}" (known: ${Object.keys(SHAPES).join(', ')})`);
  return name;
}

/** The checkpoint folder of a shape, written on first use. */
export function benchModel(name: ShapeName): string {
  const root = process.env.PINPOINT_BENCH_MODELS ?? path.join(os.tmpdir(), 'pinpoint-bench-models');
  const dir = path.join(root, name);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    if (process.env.PINPOINT_BENCH_WEIGHTS === 'torch' || parameters(name) > TORCH_WRITES) writeWithTorch(tmp, name);
    else writeRandomCheckpoint(tmp, { ...SHAPES[name] }, { seed: 1, dtype: 'BF16', tokenizerFrom: TOKENIZER });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  return dir;
}

/** float32 bytes of a checkpoint's parameters: what "N x the float32 weights" is measured against. */
export function float32Bytes(dir: string): number {
  return [...loadCheckpoint(dir).tensors.values()].reduce((n, t) => n + 4 * t.shape.reduce((a, b) => a * b, 1), 0);
}

function writeWithTorch(dir: string, name: ShapeName): void {
  const layout = writeCheckpointFrame(dir, { ...SHAPES[name] }, TOKENIZER);
  const layoutFile = path.join(dir, 'layout.json');
  fs.writeFileSync(layoutFile, JSON.stringify({ seed: 1, ...layout }));
  const script = path.join(__dirname, 'peer', 'random_weights.py');
  const result = spawnSync(PYTHON, [script, layoutFile, path.join(dir, 'model.safetensors')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`${script} failed (exit ${result.status})`);
  fs.rmSync(layoutFile);
}

function parameters(name: ShapeName): number {
  const c = SHAPES[name];
  const headDim = c.hidden_size / c.num_attention_heads;
  const attention = c.hidden_size * headDim * (2 * c.num_attention_heads + 2 * c.num_key_value_heads);
  const layer = attention + 3 * c.hidden_size * c.intermediate_size;
  return c.num_hidden_layers * layer + c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
}
