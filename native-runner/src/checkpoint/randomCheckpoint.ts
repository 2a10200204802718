import fs from 'node:fs';
import path from 'node:path';
import { expectedTensorShapes } from './checkpoint';
import { parseConfig } from './config';
import { normalSampler } from '../seededRandom';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from './safetensors';

/**
 * A freshly initialised checkpoint in Hub layout, written from a transformers-style config.json object: the
 * starting point of models trained from scratch and of tests and benchmarks that need a model of a given shape.
 * Linear weights ~ N(0, std^2) as transformers' `initializer_range` prescribes; norm weights near 1.
 */
export interface RandomCheckpointOptions {
  seed: number;
  /** stored dtype of the weights (default F32) */
  dtype?: TensorToWrite['dtype'];
  /** standard deviation of the weights (default config.initializer_range, else 0.02) */
  std?: number;
  /** split the weights into shards of at most this many bytes, with an index file */
  maxShardBytes?: number;
  /** a folder whose tokenizer.json, tokenizer_config.json and chat_template.jinja are copied */
  tokenizerFrom: string;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];

export function writeRandomCheckpoint(dir: string, hubConfig: Record<string, unknown>, options: RandomCheckpointOptions): void {
  const layout = writeCheckpointFrame(dir, hubConfig, options.tokenizerFrom);
  const std = options.std ?? layout.std;
  const random = normalSampler(options.seed);
  // each tensor is drawn when it is written, in order, so that the draws do not depend on sharding and a large model
  // never has more than one tensor in memory
  const tensors: TensorToWrite[] = layout.tensors.map(({ name, shape, isNorm }) => ({
    name,
    dtype: options.dtype ?? 'F32',
    shape,
    data: () => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 + 0.1 * random() : std * random();
      return data;
    },
  }));
  if (options.maxShardBytes) writeShardedSafetensors(dir, tensors, options.maxShardBytes);
  else writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}

export interface CheckpointLayout {
  /** the tensors the config calls for, in the order they are written */
  tensors: { name: string; shape: number[]; isNorm: boolean }[];
  /** config.initializer_range, else 0.02 */
  std: number;
}

/**
 * Everything of a checkpoint but its weights: config.json and the tokenizer's files. Returns the tensors that
 * model.safetensors must then hold, for a writer of random weights (this module's, or a faster one for large shapes).
 */
export function writeCheckpointFrame(dir: string, hubConfig: Record<string, unknown>, tokenizerFrom: string): CheckpointLayout {
  fs.mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(hubConfig, null, 2));
  const config = parseConfig(hubConfig, configFile);
  for (const file of TOKENIZER_FILES) {
    const from = path.join(tokenizerFrom, file);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(dir, file));
  }
  return {
    tensors: [...expectedTensorShapes(config)].map(([name, shape]) => ({ name, shape, isNorm: name.endsWith('norm.weight') })),
    std: (hubConfig.initializer_range as number | undefined) ?? 0.02,
  };
}
