import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCheckpoint } from '../native-runner/src/checkpoint/checkpoint';
import { writeRandomCheckpoint } from '../native-runner/src/checkpoint/randomCheckpoint';
import { REFERENCE_DIR } from '../test/fixtures/paths';

/**
 * Random checkpoints of real models' shapes, for benchmarks (no model hub is reachable): written once in BF16, as
 * the Hub ships them, and kept in $PINPOINT_BENCH_MODELS (default: the system's temporary folder) for later runs.
 * Their tokenizer is the reference qwen2 case's, whose ids all lie inside any of these vocabularies.
 */
const QWEN2 = { model_type: 'qwen2', rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, max_position_embeddings: 32768 };

export const SHAPES = {
  /** 28M parameters: a small model, where per-run overheads weigh */
  '30m': { ...QWEN2, hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 8192 },
  /** Qwen2.5-0.5B-Instruct */
  '0.5b': { ...QWEN2, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936 },
  /** Qwen2.5-1.5B-Instruct */
  '1.5b': { ...QWEN2, hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28, num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 151936 },
  /** Llama-3.1-8B-Instruct */
  '8b': {
    model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8,
    vocab_size: 128256, rms_norm_eps: 1e-5, tie_word_embeddings: false, max_position_embeddings: 131072,
    rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
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
    writeRandomCheckpoint(tmp, { ...SHAPES[name] }, { seed: 1, dtype: 'BF16', tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  return dir;
}

/** float32 bytes of a checkpoint's parameters: what "N x the float32 weights" is measured against. */
export function float32Bytes(dir: string): number {
  return [...loadCheckpoint(dir).tensors.values()].reduce((n, t) => n + 4 * t.shape.reduce((a, b) => a * b, 1), 0);
}
