import fs from 'node:fs';
import path from 'node:path';
import type { ChatMessage } from '../checkpoint/tokenizer';

/** The files of a reference case (`test/fixtures/reference/<case>/`), as its README defines them. */

export interface EncodingCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
}

export interface ChatCase {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
}

export interface TokenizerCases {
  encodings: EncodingCase[];
  chats: ChatCase[];
}

export type PatchingMethod = 'activation_all' | 'activation_last' | 'path_all' | 'path_last' | 'zero_ablation_all';
export const PATCHING_METHODS: readonly PatchingMethod[] = ['activation_all', 'activation_last', 'path_all', 'path_last', 'zero_ablation_all'];

export interface Reference {
  heads: number;
  kv_heads: number;
  head_dim: number;
  layers: number;
  prompt_ids: number[];
  /** [T][V] */
  logits: number[][];
  /** [L][T][H*D] */
  z: number[][][];
  corrupt_ids: number[];
  clean_last_logits: number[];
  corrupt_last_logits: number[];
  /** method -> [L][H][V] */
  patching_last_logits: Record<PatchingMethod, number[][][]>;
  greedy_new_ids: number[];
  generate_new_ids: number[];
  train_ids: number[];
  train_labels: number[];
  loss: number;
  /** per layer: 'q_proj.weight' etc. -> gradient in PyTorch layout */
  attn_grads: Record<string, number[] | number[][]>[];
  /** [[layer, head], ...] */
  tuned_heads: [number, number][];
  adamw_qkvo: AdamWRun;
  adamw_qo: AdamWRun;
  adamw_qkvo_changed_params: Record<string, number[] | number[][]>;
  adamw_qo_changed_params: Record<string, number[] | number[][]>;
}

export interface AdamWRun {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  steps: number;
  /** losses[i] before step i; the last after all steps */
  losses: number[];
}

export interface ReferenceCase {
  name: string;
  dir: string;
  tokenizer: TokenizerCases;
  reference: Reference;
}

export function readReferenceCase(dir: string): ReferenceCase {
  return {
    name: path.basename(path.resolve(dir)),
    dir,
    tokenizer: readJson<TokenizerCases>(path.join(dir, 'tokenizer_cases.json')),
    reference: readJson<Reference>(path.join(dir, 'reference.json')),
  };
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found (a reference case needs it)`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
