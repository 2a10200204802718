import { CheckpointError } from './safetensors';

/** What the runner needs to know about a checkpoint's architecture, normalised from config.json. */

export type ModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3';
export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3'];

export type RopeType = 'default' | 'linear' | 'llama3';
export const SUPPORTED_ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'llama3'];

export interface RopeConfig {
  type: RopeType;
  theta: number;
  /** linear and llama3 */
  factor?: number;
  /** llama3 only */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

export interface ModelConfig {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** given as head_dim, or hidden_size / num_attention_heads */
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  rope: RopeConfig;
  /** q_proj, k_proj, v_proj carry a bias (qwen2 always; llama/qwen3 when attention_bias) */
  qkvBias: boolean;
  /** o_proj carries a bias (llama/qwen3 when attention_bias) */
  oBias: boolean;
  /** gate/up/down carry a bias (llama mlp_bias) */
  mlpBias: boolean;
  /** Qwen3: RMSNorm over each head's q and k before RoPE */
  qkNorm: boolean;
  tieWordEmbeddings: boolean;
  /** per layer: the sliding window (a position sees itself and window-1 before it), or null for full attention */
  slidingWindows: (number | null)[];
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** the dtype the checkpoint was saved in (config "dtype" or "torch_dtype"), float32 when absent */
  dtype: TorchDtype;
}

type JsonObject = Record<string, unknown>;

/** transformers' class defaults for what a config.json may leave out (transformers 5.x config classes). */
const DEFAULT_ROPE_THETA = 10000;
const DEFAULT_RMS_NORM_EPS = 1e-6;
const DEFAULT_MAX_POSITION_EMBEDDINGS: Record<ModelType, number> = { llama: 2048, mistral: 4096 * 32, qwen2: 32768, qwen3: 32768 };
const DEFAULT_SLIDING_WINDOW = 4096;
const DEFAULT_MAX_WINDOW_LAYERS = 28;
/** transformers' ACT2FN maps both names to SiLU. */
const SILU_NAMES = ['silu', 'swish'];
const DTYPES: readonly TorchDtype[] = ['float32', 'float16', 'bfloat16'];
const LAYER_TYPES = ['full_attention', 'sliding_attention'];

/**
 * Normalises a transformers config.json of a supported model type, with transformers 5.x defaults for absent fields.
 * Throws CheckpointError naming `file`, the field and what was expected for anything the runner cannot run as
 * transformers would.
 */
/** The tensor lm_head multiplies by: the input embedding when the two are tied, as transformers ties them. */
export function outputEmbedding(config: ModelConfig): string {
  return config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

export function parseConfig(json: unknown, file: string): ModelConfig {
  if (!isObject(json)) throw new CheckpointError(file, `must hold a JSON object (got ${describe(json)})`);
  const c = new ConfigFields(json, file);
  const modelType = readModelType(c);
  readActivation(c);
  const hiddenSize = c.positiveInt('hidden_size');
  const numLayers = c.positiveInt('num_hidden_layers');
  const maxPositionEmbeddings = c.positiveInt('max_position_embeddings', DEFAULT_MAX_POSITION_EMBEDDINGS[modelType]);
  return {
    modelType,
    hiddenSize,
    intermediateSize: c.positiveInt('intermediate_size'),
    numLayers,
    ...readAttentionShape(c, hiddenSize),
    vocabSize: c.positiveInt('vocab_size'),
    rmsNormEps: c.positiveNumber('rms_norm_eps', DEFAULT_RMS_NORM_EPS),
    rope: readRope(c, maxPositionEmbeddings),
    ...readBiases(c, modelType),
    qkNorm: modelType === 'qwen3',
    tieWordEmbeddings: c.bool('tie_word_embeddings', false),
    slidingWindows: readSlidingWindows(c, modelType, numLayers),
    maxPositionEmbeddings,
    bosTokenId: c.tokenIdOrNull('bos_token_id'),
    eosTokenIds: readEosTokenIds(c),
    padTokenId: c.tokenIdOrNull('pad_token_id'),
    dtype: readDtype(c),
  };
}

function readModelType(c: ConfigFields): ModelType {
  const supported = `(supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`;
  if (!c.has('model_type')) c.fail(`model_type is missing ${supported}`);
  const modelType = c.string('model_type');
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    c.fail(`model_type "${modelType}" is not supported ${supported}`);
  }
  return modelType as ModelType;
}

function readActivation(c: ConfigFields): void {
  const act = c.has('hidden_act') ? c.string('hidden_act') : 'silu';
  if (!SILU_NAMES.includes(act)) c.fail(`hidden_act "${act}" is not supported (supported: ${SILU_NAMES.join(', ')})`);
}

function readAttentionShape(c: ConfigFields, hiddenSize: number): Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim'> {
  const numHeads = c.positiveInt('num_attention_heads');
  // transformers reads an absent num_key_value_heads as plain multi-head attention
  const numKvHeads = c.positiveInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    c.fail(
      `num_key_value_heads ${numKvHeads} does not divide num_attention_heads ${numHeads}: every KV head must serve a whole number of query heads`,
    );
  }
  if (!c.has('head_dim') && hiddenSize % numHeads !== 0) {
    c.fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}, and there is no head_dim to say the head size`);
  }
  const headDim = c.has('head_dim') ? c.positiveInt('head_dim') : hiddenSize / numHeads;
  if (headDim % 2 !== 0) c.fail(`head_dim ${headDim} is odd; RoPE rotates pairs of dimensions and needs an even head size`);
  return { numHeads, numKvHeads, headDim };
}

/**
 * Both layouts, as transformers' `convert_rope_params_to_dict` merges them: the older `rope_scaling` (with `type`
 * as the older spelling of `rope_type`) wins over `rope_parameters`, and `rope_theta` comes from the dict, else
 * from the top level, else the default.
 */
function readRope(c: ConfigFields, maxPositionEmbeddings: number): RopeConfig {
  const rope = ropeFields(c);
  const typeKey = !rope.has('rope_type') && rope.has('type') ? 'type' : 'rope_type';
  const type = rope.has(typeKey) ? rope.string(typeKey) : 'default';
  if (!(SUPPORTED_ROPE_TYPES as readonly string[]).includes(type)) {
    rope.fail(`${rope.name(typeKey)} "${type}" is not supported (supported: ${SUPPORTED_ROPE_TYPES.join(', ')})`);
  }
  const theta = rope.has('rope_theta') ? rope.positiveNumber('rope_theta') : c.positiveNumber('rope_theta', DEFAULT_ROPE_THETA);
  switch (type as RopeType) {
    case 'default':
      return { type: 'default', theta };
    case 'linear':
      return { type: 'linear', theta, factor: rope.positiveNumber('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        theta,
        factor: rope.positiveNumber('factor'),
        lowFreqFactor: rope.positiveNumber('low_freq_factor'),
        highFreqFactor: rope.positiveNumber('high_freq_factor'),
        // transformers fills it in from max_position_embeddings when the dict leaves it out
        originalMaxPositionEmbeddings: rope.positiveInt('original_max_position_embeddings', maxPositionEmbeddings),
      };
  }
}

function ropeFields(c: ConfigFields): ConfigFields {
  for (const key of ['rope_scaling', 'rope_parameters']) {
    if (!c.has(key)) continue;
    const value = c.object(key);
    // an empty dict is falsy to transformers, which then falls through to the next source
    if (Object.keys(value).length === 0) continue;
    const perLayerType = Object.keys(value).filter((k) => isObject(value[k]));
    if (perLayerType.length > 0) {
      c.fail(
        `${key} holds a separate RoPE configuration per layer type (${perLayerType.join(', ')}); only one RoPE configuration for all layers is supported`,
      );
    }
    return c.nested(key, value);
  }
  return c.nested('rope_parameters', {});
}

function readBiases(c: ConfigFields, modelType: ModelType): Pick<ModelConfig, 'qkvBias' | 'oBias' | 'mlpBias'> {
  switch (modelType) {
    case 'qwen2':
      return { qkvBias: true, oBias: false, mlpBias: false };
    case 'mistral':
      return { qkvBias: false, oBias: false, mlpBias: false };
    case 'llama': {
      const attentionBias = c.bool('attention_bias', false);
      return { qkvBias: attentionBias, oBias: attentionBias, mlpBias: c.bool('mlp_bias', false) };
    }
    case 'qwen3': {
      const attentionBias = c.bool('attention_bias', false);
      return { qkvBias: attentionBias, oBias: attentionBias, mlpBias: false };
    }
  }
}

function readSlidingWindows(c: ConfigFields, modelType: ModelType, numLayers: number): (number | null)[] {
  switch (modelType) {
    case 'llama':
      return new Array<null>(numLayers).fill(null);
    case 'mistral':
      return new Array<number | null>(numLayers).fill(c.positiveIntOrNull('sliding_window', DEFAULT_SLIDING_WINDOW));
    case 'qwen2':
    case 'qwen3':
      return qwenSlidingWindows(c, numLayers);
  }
}

/** Qwen2/Qwen3 ignore `sliding_window` unless `use_sliding_window`; `layer_types` then says which layers slide. */
function qwenSlidingWindows(c: ConfigFields, numLayers: number): (number | null)[] {
  const window = c.bool('use_sliding_window', false) ? c.positiveIntOrNull('sliding_window', DEFAULT_SLIDING_WINDOW) : null;
  if (!c.has('layer_types')) {
    if (window === null) return new Array<null>(numLayers).fill(null);
    const firstSliding = c.nonNegativeInt('max_window_layers', DEFAULT_MAX_WINDOW_LAYERS);
    return Array.from({ length: numLayers }, (_, i) => (i >= firstSliding ? window : null));
  }
  return readLayerTypes(c, numLayers).map((type, i) => {
    if (type === 'full_attention') return null;
    // transformers cannot build the sliding mask without a window either
    if (window === null) {
      c.fail(`layer_types[${i}] is "sliding_attention" but there is no sliding window (use_sliding_window is not true or sliding_window is null)`);
    }
    return window;
  });
}

function readLayerTypes(c: ConfigFields, numLayers: number): string[] {
  const types = c.value('layer_types');
  if (!Array.isArray(types) || types.length !== numLayers) {
    c.fail(`layer_types must be a list of num_hidden_layers (${numLayers}) entries (got ${describe(types)})`);
  }
  types.forEach((type, i) => {
    if (typeof type !== 'string' || !LAYER_TYPES.includes(type)) {
      c.fail(`layer_types[${i}] ${describe(type)} is not supported (supported: ${LAYER_TYPES.join(', ')})`);
    }
  });
  return types as string[];
}

function readEosTokenIds(c: ConfigFields): number[] {
  const value = c.value('eos_token_id');
  if (value === undefined || value === null) return [];
  if (isTokenId(value)) return [value];
  if (Array.isArray(value) && value.every(isTokenId)) return value;
  c.fail(`eos_token_id must be a token id, a list of token ids or null (got ${describe(value)})`);
}

/** `torch_dtype` is the name transformers 4 saved; 5.x saves `dtype`. */
function readDtype(c: ConfigFields): TorchDtype {
  const key = c.has('dtype') ? 'dtype' : 'torch_dtype';
  if (!c.has(key)) return 'float32';
  const dtype = c.string(key);
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    c.fail(`${key} "${dtype}" is not supported (supported: ${DTYPES.join(', ')})`);
  }
  return dtype as TorchDtype;
}

/** Typed reads of one JSON object in a config file; `prefix` names nested objects (`rope_scaling.`) in messages. */
class ConfigFields {
  constructor(
    private readonly raw: JsonObject,
    readonly file: string,
    private readonly prefix = '',
  ) {}

  nested(key: string, raw: JsonObject): ConfigFields {
    return new ConfigFields(raw, this.file, `${this.name(key)}.`);
  }

  name(key: string): string {
    return this.prefix + key;
  }

  fail(message: string): never {
    throw new CheckpointError(this.file, message);
  }

  value(key: string): unknown {
    return this.raw[key];
  }

  /** Present and not null: transformers treats an explicit null like an absent field. */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  string(key: string): string {
    return this.check(key, 'a string', (v): v is string => typeof v === 'string');
  }

  object(key: string): JsonObject {
    return this.check(key, 'an object', isObject);
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    return this.check(key, 'true or false', (v): v is boolean => typeof v === 'boolean');
  }

  positiveInt(key: string, fallback?: number): number {
    if (!this.has(key) && fallback !== undefined) return fallback;
    return this.check(key, 'a positive integer', (v): v is number => Number.isSafeInteger(v) && (v as number) > 0);
  }

  nonNegativeInt(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    return this.check(key, 'a non-negative integer', isTokenId);
  }

  positiveNumber(key: string, fallback?: number): number {
    if (!this.has(key) && fallback !== undefined) return fallback;
    return this.check(key, 'a positive number', (v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0);
  }

  /** An absent field takes the default; an explicit null means none. */
  positiveIntOrNull(key: string, whenAbsent: number): number | null {
    if (this.raw[key] === undefined) return whenAbsent;
    if (this.raw[key] === null) return null;
    return this.positiveInt(key);
  }

  tokenIdOrNull(key: string): number | null {
    if (!this.has(key)) return null;
    return this.check(key, 'a token id (a non-negative integer) or null', isTokenId);
  }

  private check<T>(key: string, expected: string, accepts: (value: unknown) => value is T): T {
    const value = this.raw[key];
    if (value === undefined) this.fail(`${this.name(key)} is missing; expected ${expected}`);
    if (!accepts(value)) this.fail(`${this.name(key)} must be ${expected} (got ${describe(value)})`);
    return value;
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTokenId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
