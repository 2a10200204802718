/**
 * A Hugging Face checkpoint folder checked against itself: config.json says which tensors of which
 * shapes the model has, and the safetensors headers must hold exactly those. Only headers are read;
 * the weights are read later, tensor by tensor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig, type ModelConfig } from './config';
import { CheckpointError, formatShape, openWeights, type TensorInfo, type WeightIndex } from './safetensors';

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  weights: WeightIndex;
  /** exactly the tensors config.json implies, in expectedTensorShapes order */
  tensors: Map<string, TensorInfo>;
}

interface ExpectedTensor {
  shape: number[];
  /** the config.json fields the shape comes from, for error messages */
  because: string;
}

const LOADABLE_DTYPES = ['F32', 'F16', 'BF16'];
/** Older transformers saved RoPE's inverse frequencies; they follow from config.json anyway. */
const IGNORED_SUFFIX = '.rotary_emb.inv_freq';
const MAX_NAMES_LISTED = 5;

/** transformers' tensor names, with PyTorch's [out, in] shapes for linear weights. */
export function expectedTensorShapes(config: ModelConfig): Map<string, number[]> {
  return new Map([...expectedTensors(config)].map(([name, { shape }]) => [name, shape]));
}

function expectedTensors(config: ModelConfig): Map<string, ExpectedTensor> {
  const { hiddenSize: C, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: D, vocabSize: V } = config;
  const c = `hidden_size=${C}`;
  const q = `num_attention_heads=${H}, head_dim=${D}`;
  const kv = `num_key_value_heads=${KV}, head_dim=${D}`;
  const i = `intermediate_size=${I}`;
  const vocab = `vocab_size=${V}, ${c}`;
  const tensors = new Map<string, ExpectedTensor>();
  const add = (name: string, shape: number[], because: string) => tensors.set(name, { shape, because });

  add('model.embed_tokens.weight', [V, C], vocab);
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    add(`${p}.input_layernorm.weight`, [C], c);
    add(`${p}.self_attn.q_proj.weight`, [H * D, C], `${q}, ${c}`);
    add(`${p}.self_attn.k_proj.weight`, [KV * D, C], `${kv}, ${c}`);
    add(`${p}.self_attn.v_proj.weight`, [KV * D, C], `${kv}, ${c}`);
    add(`${p}.self_attn.o_proj.weight`, [C, H * D], `${c}, ${q}`);
    if (config.qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [H * D], q);
      add(`${p}.self_attn.k_proj.bias`, [KV * D], kv);
      add(`${p}.self_attn.v_proj.bias`, [KV * D], kv);
    }
    if (config.oBias) add(`${p}.self_attn.o_proj.bias`, [C], c);
    if (config.qkNorm) {
      add(`${p}.self_attn.q_norm.weight`, [D], `head_dim=${D}`);
      add(`${p}.self_attn.k_norm.weight`, [D], `head_dim=${D}`);
    }
    add(`${p}.post_attention_layernorm.weight`, [C], c);
    add(`${p}.mlp.gate_proj.weight`, [I, C], `${i}, ${c}`);
    add(`${p}.mlp.up_proj.weight`, [I, C], `${i}, ${c}`);
    add(`${p}.mlp.down_proj.weight`, [C, I], `${c}, ${i}`);
    if (config.mlpBias) {
      add(`${p}.mlp.gate_proj.bias`, [I], i);
      add(`${p}.mlp.up_proj.bias`, [I], i);
      add(`${p}.mlp.down_proj.bias`, [C], c);
    }
  }
  add('model.norm.weight', [C], c);
  if (!config.tieWordEmbeddings) add('lm_head.weight', [V, C], vocab);
  return tensors;
}

export function loadCheckpoint(dir: string): Checkpoint {
  const absolute = path.resolve(dir);
  const configFile = path.join(absolute, 'config.json');
  const config = parseConfig(readConfigJson(configFile), configFile);
  const weights = openWeights(absolute);
  const expected = expectedTensors(config);
  checkNoneMissing(expected, weights);
  checkNoneUnexpected(expected, weights, config);
  const tensors = new Map<string, TensorInfo>();
  for (const [name, want] of expected) {
    const info = weights.tensors.get(name)!;
    checkTensor(info, want);
    tensors.set(name, info);
  }
  return { dir: absolute, config, weights, tensors };
}

function readConfigJson(file: string): unknown {
  if (!fs.existsSync(file)) {
    throw new CheckpointError(file, 'not found; a checkpoint folder needs the config.json saved with its weights');
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(file, `is not valid JSON (${(err as Error).message})`);
  }
}

function checkNoneMissing(expected: Map<string, ExpectedTensor>, weights: WeightIndex): void {
  const missing = [...expected.keys()].filter((name) => !weights.tensors.has(name));
  if (missing.length === 0) return;
  throw new CheckpointError(weights.source, `has no ${listNames(missing)}, which config.json implies`);
}

/** A tensor config.json does not account for means config and weights describe different models. */
function checkNoneUnexpected(expected: Map<string, ExpectedTensor>, weights: WeightIndex, config: ModelConfig): void {
  const unexpected = [...weights.tensors.keys()].filter(
    (name) => !expected.has(name) && !name.endsWith(IGNORED_SUFFIX) && !(name === 'lm_head.weight' && config.tieWordEmbeddings),
  );
  if (unexpected.length === 0) return;
  throw new CheckpointError(
    weights.source,
    `holds ${listNames(unexpected)}, which config.json ` +
      `(model_type=${config.modelType}, num_hidden_layers=${config.numLayers}) does not account for: config.json and the weights disagree`,
  );
}

function checkTensor(info: TensorInfo, want: ExpectedTensor): void {
  const shapesMatch = info.shape.length === want.shape.length && info.shape.every((dim, k) => dim === want.shape[k]);
  if (!shapesMatch) {
    throw new CheckpointError(
      info.file,
      `${info.name} has shape ${formatShape(info.shape)} but config.json (${want.because}) implies ${formatShape(want.shape)}`,
    );
  }
  if (!LOADABLE_DTYPES.includes(info.dtype)) {
    throw new CheckpointError(info.file, `${info.name} is stored as ${info.dtype}, expected one of ${LOADABLE_DTYPES.join(', ')}`);
  }
}

function listNames(names: string[]): string {
  const listed = names.slice(0, MAX_NAMES_LISTED).join(', ');
  const more = names.length - MAX_NAMES_LISTED;
  const noun = names.length === 1 ? 'tensor' : `${names.length} tensors`;
  return more > 0 ? `${noun} ${listed} and ${more} more` : `${noun} ${listed}`;
}
