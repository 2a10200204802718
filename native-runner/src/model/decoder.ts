import type { ModelConfig } from '../checkpoint/config';
import { Graph, type Dim, type ElemType } from '../onnx/graph';
import { inverseFrequencies } from './rope';
import type { GraphDtype } from './weightFile';

/**
 * Compiles a llama-family decoder (llama, mistral, qwen2, qwen3) into one ONNX graph, op for op as transformers'
 * eager implementation computes it, with the head instrumentation that patching needs built in.
 *
 * Shapes: B batch rows, T new positions, P cached positions, K = P + T keys, C hidden, H query heads,
 * KV key/value heads, D head dim, N = B * T flattened positions, L layers, V vocabulary.
 * The residual stream is kept flat as [N, C] so that every projection is one Gemm against the weight as
 * stored ([out, in], transB), with no transposed copy of any weight. In float16 graphs the projections,
 * attention products and MLPs run in half precision, while the residual stream, norms and softmax stay in
 * float32: the sums over layers are where half precision loses the most, and they cost little bandwidth.
 */

export interface DecoderGraphOptions {
  dtype: GraphDtype;
  /**
   * logits for the last position only ([B, V] output), for every position ([B, T, V] output), or for the
   * flattened positions listed in the input `loss_rows` [M] (no output: the training graph takes them)
   */
  logits: 'last' | 'all' | 'rows';
  /** also return argmax of the last position's logits as `next_token` [B] */
  nextToken: boolean;
  /** return each layer's o_proj input `z.{l}` ([B, T, H*D] or the last position [B, H*D]) */
  z: 'none' | 'all' | 'last';
  /** per-row head patching, ablation and attention-input holding (see `InterventionInputs`) */
  interventions: boolean;
  /** `past_key.{l}`/`past_value.{l}` inputs and `present_*` outputs */
  kvCache: boolean;
  /** concrete input sizes instead of symbolic ones (training graphs, whose shape arithmetic ORT then folds) */
  shape?: { batch: number; tokens: number; rows: number };
}

/** Supplies a parameter by its transformers name: an initializer, or a graph input when it is being trained. */
export type WeightBinder = (g: Graph, name: string) => string;

export interface LayerValues {
  pattern?: string;
  z?: string;
  attnOut?: string;
  residMid?: string;
}

export interface DecoderGraph {
  graph: Graph;
  /** the logits value: [B, V], [N, V] or [M, V] as options.logits says */
  logits: string;
}

/**
 * Interventions are addressed per batch row, so that one run carries the reference row, the source row and
 * every patched variant side by side and no activation leaves the device:
 * - `patch_source` [B] int64, `patch_heads` [B, L, H] bool, `patch_positions` [B, T] bool: z of the marked
 *   heads at the marked positions is replaced with row `patch_source[b]`'s z of the same layer.
 * - `ablate_heads` [B, L, H] bool, `ablate_values` [L, H, D]: z of the marked heads is replaced at every
 *   position by the given values (zeros: zero ablation; dataset means: mean ablation).
 * - `hold_source` [B] int64, `hold_layers` [B, L] bool: the attention-block input (after input_layernorm) of
 *   the marked layers is replaced with row `hold_source[b]`'s, the freezing of path patching.
 */
export const INTERVENTION_INPUTS = [
  'patch_source', 'patch_heads', 'patch_positions', 'ablate_heads', 'ablate_values', 'hold_source', 'hold_layers',
] as const;

/** Large negative score for masked keys: transformers' `torch.finfo(dtype).min` in float32. */
const MASKED_SCORE = -3.4028234663852886e38;

export function buildDecoderGraph(config: ModelConfig, weights: WeightBinder, options: DecoderGraphOptions): DecoderGraph {
  return new DecoderBuilder(config, weights, options).build();
}

/** The decoder's graph builder; subclasses add to the graph around what `tap` reports of each layer. */
export class DecoderBuilder {
  protected readonly g = new Graph('pinpoint_decoder');
  protected readonly dt: ElemType;
  /** [B, T] and [B, K] shapes, and the masks per distinct sliding window */
  private btShape = '';
  private readonly masks = new Map<number | null, string>();
  private cos = '';
  private sin = '';

  constructor(
    protected readonly config: ModelConfig,
    private readonly bindWeight: WeightBinder,
    protected readonly options: DecoderGraphOptions,
  ) {
    this.dt = options.dtype;
  }

  build(): DecoderGraph {
    const { g, config: c, options: o } = this;
    const ids = g.input('input_ids', 'int64', [this.dim('batch'), this.dim('new')]);
    g.input('attention_mask', 'int64', [this.dim('batch'), this.dim(o.kvCache ? 'keys' : 'new')]);
    const positions = g.input('position_ids', 'int64', [this.dim('batch'), this.dim('new')]);
    if (o.interventions) this.declareInterventionInputs();
    this.btShape = g.op('Shape', [ids]);
    this.rotaryTables(positions);

    const embedded = g.op('Reshape', [g.op('Gather', [this.weight('model.embed_tokens.weight'), ids]), g.ints([-1, c.hiddenSize])]);
    let x = this.toFloat32(embedded);
    for (let l = 0; l < c.numLayers; l++) x = this.layer(l, x); // [N, C] float32
    return { graph: g, logits: this.head(x) };
  }

  /**
   * Values of layer l for subclasses: `pattern` [B, H, T, K] (the attention probabilities, float32), `z`
   * [B, T, H, D] (the o_proj input, after interventions), `attnOut` [N, C] (the attention block's output, in the
   * graph dtype) and `residMid` [N, C] (float32 residual after it).
   */
  protected tap(_layer: number, _values: LayerValues): void {}

  /** A symbolic dim, or its concrete size in a graph of fixed shape. */
  private dim(name: 'batch' | 'new' | 'keys' | 'rows'): Dim {
    const shape = this.options.shape;
    if (!shape) return name;
    return { batch: shape.batch, new: shape.tokens, keys: shape.tokens, rows: shape.rows }[name];
  }

  private declareInterventionInputs(): void {
    const { g, config: c } = this;
    g.input('patch_source', 'int64', [this.dim('batch')]);
    g.input('patch_heads', 'bool', [this.dim('batch'), c.numLayers, c.numHeads]);
    g.input('patch_positions', 'bool', [this.dim('batch'), this.dim('new')]);
    g.input('ablate_heads', 'bool', [this.dim('batch'), c.numLayers, c.numHeads]);
    g.input('ablate_values', this.dt, [c.numLayers, c.numHeads, c.headDim]);
    g.input('hold_source', 'int64', [this.dim('batch')]);
    g.input('hold_layers', 'bool', [this.dim('batch'), c.numLayers]);
  }

  protected layer(l: number, x: string): string {
    const { g } = this;
    const p = `model.layers.${l}`;
    let attnIn = this.rmsNorm(x, `${p}.input_layernorm.weight`); // [N, C]
    if (this.options.interventions) attnIn = this.hold(l, attnIn);
    const attnOut = this.attention(l, attnIn);
    x = g.op('Add', [x, this.toFloat32(attnOut)]);
    this.tap(l, { attnOut, residMid: x });
    const mlpIn = this.rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    return g.op('Add', [x, this.toFloat32(this.mlp(p, mlpIn))]);
  }

  private attention(l: number, x: string): string {
    const { g, config: c, options: o } = this;
    const p = `model.layers.${l}.self_attn`;
    const q = this.heads(this.linear(x, `${p}.q_proj`, c.qkvBias), c.numHeads, c.qkNorm ? `${p}.q_norm.weight` : null);
    let k = this.heads(this.linear(x, `${p}.k_proj`, c.qkvBias), c.numKvHeads, c.qkNorm ? `${p}.k_norm.weight` : null);
    let v = this.heads(this.linear(x, `${p}.v_proj`, c.qkvBias), c.numKvHeads, null, false);
    if (o.kvCache) {
      k = g.op('Concat', [g.input(`past_key.${l}`, this.dt, [this.dim('batch'), c.numKvHeads, 'past', c.headDim]), k], { axis: 2 });
      v = g.op('Concat', [g.input(`past_value.${l}`, this.dt, [this.dim('batch'), c.numKvHeads, 'past', c.headDim]), v], { axis: 2 });
      g.output(`present_key.${l}`, k, this.dt, ['batch', c.numKvHeads, 'keys', c.headDim]);
      g.output(`present_value.${l}`, v, this.dt, ['batch', c.numKvHeads, 'keys', c.headDim]);
    }
    let z = this.scaledDotProduct(l, q, k, v); // [B, T, H, D]
    if (o.interventions) z = this.interveneOnHeads(l, z);
    this.tap(l, { z });
    const zFlat = g.op('Reshape', [z, g.ints([0, 0, c.numHeads * c.headDim])]); // [B, T, H*D]
    if (o.z !== 'none') this.emitZ(l, zFlat);
    return this.linear(g.op('Reshape', [zFlat, g.ints([-1, c.numHeads * c.headDim])]), `${p}.o_proj`, c.oBias);
  }

  /** [N, heads*D] -> [B, heads, T, D], with the optional per-head RMSNorm and RoPE. */
  private heads(flat: string, heads: number, normWeight: string | null, rotate = true): string {
    const { g, config: c } = this;
    let t = g.op('Reshape', [flat, g.op('Concat', [this.btShape, g.ints([heads, c.headDim])], { axis: 0 })]); // [B, T, heads, D]
    if (normWeight) t = this.rmsNorm(t, normWeight);
    t = g.op('Transpose', [t], { perm: [0, 2, 1, 3] });
    return rotate ? this.rope(t) : t;
  }

  /**
   * Grouped-query attention without repeating K and V: the nrep query heads that share a KV head are stacked
   * along the query axis, [B, KV, nrep*T, D], which is exactly repeat_kv's head order h = kv * nrep + r.
   * The scale is applied to q rather than to the [T, K] scores, and the mask is added (as transformers adds
   * its causal mask): both cost O(T*D) or a cheap add instead of a pass over every score, forward and backward.
   */
  private scaledDotProduct(l: number, q: string, k: string, v: string): string {
    const { g, config: c } = this;
    const scaled = g.op('Mul', [q, this.constant(c.headDim ** -0.5)]);
    const qGrouped = g.op('Reshape', [scaled, g.ints([0, c.numKvHeads, -1, c.headDim])]);
    const raw = g.op('MatMul', [qGrouped, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]); // [B, KV, nrep*T, K]
    let scores = g.op('Reshape', [raw, g.ints([0, c.numHeads, -1, 0])]);
    if (this.dt !== 'float32') scores = g.op('Cast', [scores], { to: 1 }); // softmax in float32 as transformers does
    const masked = g.op('Add', [scores, this.maskBias(c.slidingWindows[l])]); // [B, H, T, K]
    let probs = g.op('Softmax', [masked], { axis: -1 });
    this.tap(l, { pattern: probs });
    if (this.dt !== 'float32') probs = g.op('Cast', [probs], { to: 10 });
    const probsGrouped = g.op('Reshape', [probs, g.ints([0, c.numKvHeads, -1, 0])]);
    const out = g.op('Reshape', [g.op('MatMul', [probsGrouped, v]), g.ints([0, c.numHeads, -1, c.headDim])]);
    return g.op('Transpose', [out], { perm: [0, 2, 1, 3] });
  }

  /** z [B, T, H, D]: patch from another row at chosen positions, then ablate. */
  private interveneOnHeads(l: number, z: string): string {
    const { g } = this;
    const layerHeads = (name: string) => g.op('Unsqueeze', [g.op('Gather', [name, g.ints([l])], { axis: 1 }), g.ints([3])]); // [B, 1, H, 1]
    const atPositions = g.op('Unsqueeze', ['patch_positions', g.ints([2, 3])]); // [B, T, 1, 1]
    const patch = g.op('And', [layerHeads('patch_heads'), atPositions]); // [B, T, H, 1]
    z = g.op('Where', [patch, g.op('Gather', [z, 'patch_source'], { axis: 0 }), z]);
    const values = g.op('Gather', ['ablate_values', g.ints([l])], { axis: 0 }); // [1, H, D]
    return g.op('Where', [layerHeads('ablate_heads'), values, z]);
  }

  /** attention input [N, C]: held at row hold_source's values where hold_layers says so. */
  private hold(l: number, x: string): string {
    const { g, config: c } = this;
    const rows = g.op('Reshape', [x, g.op('Concat', [this.btShape, g.ints([c.hiddenSize])], { axis: 0 })]); // [B, T, C]
    const held = g.op('Unsqueeze', [g.op('Gather', ['hold_layers', g.ints([l])], { axis: 1 }), g.ints([2])]); // [B, 1, 1]
    const mixed = g.op('Where', [held, g.op('Gather', [rows, 'hold_source'], { axis: 0 }), rows]);
    return g.op('Reshape', [mixed, g.ints([-1, c.hiddenSize])]);
  }

  private emitZ(l: number, zFlat: string): void {
    const { g, config: c } = this;
    const width = c.numHeads * c.headDim;
    if (this.options.z === 'all') return g.output(`z.${l}`, this.toFloat32(zFlat), 'float32', ['batch', 'new', width]);
    const last = g.op('Squeeze', [this.lastPosition(zFlat), g.ints([1])]);
    g.output(`z.${l}`, this.toFloat32(last), 'float32', ['batch', width]);
  }

  protected mlp(p: string, x: string): string {
    const { g, config: c } = this;
    const gate = this.linear(x, `${p}.mlp.gate_proj`, c.mlpBias);
    const up = this.linear(x, `${p}.mlp.up_proj`, c.mlpBias);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate])]); // SiLU
    return this.linear(g.op('Mul', [act, up]), `${p}.mlp.down_proj`, c.mlpBias);
  }

  /** Final norm and lm_head, only on the positions whose logits are asked for. */
  private head(x: string): string {
    const { g, config: c, options: o } = this;
    const lmHead = this.weight(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    const rows = g.op('Reshape', [x, g.op('Concat', [this.btShape, g.ints([c.hiddenSize])], { axis: 0 })]); // [B, T, C]
    const selected = {
      last: () => g.op('Squeeze', [this.lastPosition(rows), g.ints([1])]), // [B, C]
      all: () => x, // [N, C]
      rows: () => g.op('Gather', [x, g.input('loss_rows', 'int64', [this.dim('rows')])], { axis: 0 }), // [M, C]
    }[o.logits]();
    const logits = this.toFloat32(g.op('Gemm', [this.rmsNorm(selected, 'model.norm.weight'), lmHead], { transB: 1 }));
    if (o.logits === 'rows') return logits;
    if (o.logits === 'last') {
      g.output('logits', logits, 'float32', ['batch', c.vocabSize]);
      if (o.nextToken) g.output('next_token', g.op('ArgMax', [logits], { axis: -1, keepdims: 0 }), 'int64', ['batch']);
      return logits;
    }
    const all = g.op('Reshape', [logits, g.op('Concat', [this.btShape, g.ints([c.vocabSize])], { axis: 0 })]);
    g.output('logits', all, 'float32', ['batch', 'new', c.vocabSize]);
    if (o.nextToken) {
      const last = g.op('Squeeze', [this.lastPosition(all), g.ints([1])]);
      g.output('next_token', g.op('ArgMax', [last], { axis: -1, keepdims: 0 }), 'int64', ['batch']);
    }
    return logits;
  }

  /** [B, T, ...] -> [B, 1, ...] */
  protected lastPosition(t: string): string {
    const { g } = this;
    return g.op('Slice', [t, g.ints([-1]), g.ints([Number.MAX_SAFE_INTEGER]), g.ints([1])]);
  }

  /** y = x / sqrt(mean(x^2) + eps) * w over the last axis, in float32 whatever the graph's dtype. */
  protected rmsNorm(x: string, weightName: string): string {
    const { g, config: c } = this;
    const xf = this.toFloat32(x);
    const variance = g.op('ReduceMean', [g.op('Mul', [xf, xf]), g.ints([-1])], { keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(c.rmsNormEps)])])]);
    const normed = g.op('Mul', [xf, inv]);
    return g.op('Mul', [this.weight(weightName), this.dt === 'float32' ? normed : g.op('Cast', [normed], { to: 10 })]);
  }

  /** x W^T + b for x [N, in] and W [out, in] as stored in the checkpoint. */
  protected linear(x: string, prefix: string, bias: boolean): string {
    const inputs = [x, this.weight(`${prefix}.weight`)];
    if (bias) inputs.push(this.weight(`${prefix}.bias`));
    return this.g.op('Gemm', inputs, { transB: 1 });
  }

  /** cos and sin [B, 1, T, D] of the positions, computed in float32 from the checkpoint's RoPE frequencies. */
  private rotaryTables(positions: string): void {
    const { g, config: c } = this;
    const invFreq = g.constant('inv_freq', 'float32', [1, 1, c.headDim / 2], inverseFrequencies(c.rope, c.headDim));
    const pos = g.op('Unsqueeze', [g.op('Cast', [positions], { to: 1 }), g.ints([2])]); // [B, T, 1]
    const freqs = g.op('Mul', [pos, invFreq]); // [B, T, D/2]
    const emb = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], { axis: -1 }), g.ints([1])]); // [B, 1, T, D]
    this.cos = this.fromFloat32(g.op('Cos', [emb]));
    this.sin = this.fromFloat32(g.op('Sin', [emb]));
  }

  /** x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]. */
  private rope(x: string): string {
    const { g, config: c } = this;
    const half = c.headDim / 2;
    const x1 = g.op('Slice', [x, g.ints([0]), g.ints([half]), g.ints([-1])]);
    const x2 = g.op('Slice', [x, g.ints([half]), g.ints([c.headDim]), g.ints([-1])]);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, this.cos]), g.op('Mul', [rotated, this.sin])]);
  }

  /**
   * The additive attention mask [B, 1, T, K]: 0 where a query sees a key (not padding, not in the future, inside
   * the sliding window when the layer has one: a query sees itself and the window - 1 keys before it), else
   * float32's lowest. Query t sits at cache index P + t; windows count cache indices, as transformers does.
   */
  private maskBias(window: number | null): string {
    const cached = this.masks.get(window);
    if (cached) return cached;
    const { g } = this;
    const zero = g.scalar(0, 'int64');
    const one = g.scalar(1, 'int64');
    const keyCount = g.op('Squeeze', [g.op('Shape', ['attention_mask'], { start: 1, end: 2 }), g.ints([0])]);
    const queryCount = g.op('Squeeze', [g.op('Shape', ['input_ids'], { start: 1, end: 2 }), g.ints([0])]);
    const keyIdx = g.op('Unsqueeze', [g.op('Range', [zero, keyCount, one]), g.ints([0])]); // [1, K]
    const queryIdx = g.op('Unsqueeze', [g.op('Range', [g.op('Sub', [keyCount, queryCount]), keyCount, one]), g.ints([1])]); // [T, 1]
    let allowed = g.op('LessOrEqual', [keyIdx, queryIdx]); // [T, K]
    if (window !== null) {
      const inWindow = g.op('Less', [g.op('Sub', [queryIdx, keyIdx]), g.scalar(window, 'int64')]);
      allowed = g.op('And', [allowed, inWindow]);
    }
    const notPadding = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { to: 9 }), g.ints([1, 2])]); // [B, 1, 1, K]
    const bias = g.op('Where', [g.op('And', [notPadding, allowed]), g.scalar(0), g.scalar(MASKED_SCORE)]); // [B, 1, T, K]
    this.masks.set(window, bias);
    return bias;
  }

  protected weight(name: string): string {
    return this.bindWeight(this.g, name);
  }

  private constant(value: number): string {
    return this.fromFloat32(this.g.scalar(value));
  }

  protected toFloat32(x: string): string {
    return this.dt === 'float32' ? x : this.g.op('Cast', [x], { to: 1 });
  }

  protected fromFloat32(x: string): string {
    return this.dt === 'float32' ? x : this.g.op('Cast', [x], { to: 10 });
  }
}
