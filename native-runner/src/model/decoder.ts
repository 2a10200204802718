import { outputEmbedding, type ModelConfig } from '../checkpoint/config';
import { onnxType, type ElemType, type Graph } from '../onnx/graph';
import { OnnxDataType } from '../onnx/schema';
import { inverseFrequencies } from './rope';
import type { Hook, HookContext, Site } from './sites';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * A llama-family decoder (llama, mistral, qwen2, qwen3) written into a graph, op for op as transformers' eager
 * implementation computes it. The decoder declares no graph inputs or outputs: the graph that uses it passes the
 * token values in and takes the residual stream out, so the same pass serves the inference graph, its decoding
 * loop, the training graphs and attribution. What is read or changed along the way is a `Hook` at a named site.
 *
 * Shapes: B batch rows, T new positions, P cached positions, K = P + T keys, C hidden, H query heads,
 * KV key/value heads, D head dim, N = B * T flattened positions, L layers, V vocabulary.
 * The residual stream is kept flat as [N, C] so that every projection is one Gemm against the weight as
 * stored ([out, in], transB), with no transposed copy of any weight. In float16 graphs the projections,
 * attention products and MLPs run in half precision, while the residual stream, norms and softmax stay in
 * float32: the sums over layers are where half precision loses the most, and they cost little bandwidth.
 */

/** Supplies a parameter by its transformers name: an initializer of the root graph, or a value being trained. */
export type WeightBinder = (g: Graph, name: string) => string;

export interface DecoderInputs {
  /** [B, T] int64 */
  ids: string;
  /** [B, K] int64: 1 for real tokens over cached and new positions */
  mask: string;
  /** [B, T] int64 */
  positions: string;
  /** the keys and values of earlier positions, per layer [B, KV, P, D] */
  past?: KvCache;
}

export interface KvCache {
  keys: string[];
  values: string[];
}

export interface DecoderPass {
  /** [N, C] float32: the residual stream after the last layer */
  residual: string;
  /** per layer [B, KV, K, D]: the past and the new positions' keys and values */
  cache: KvCache;
}

/** Large negative score for masked keys: transformers' `torch.finfo(dtype).min` in float32. */
const MASKED_SCORE = -3.4028234663852886e38;

export class Decoder {
  private readonly dt: ElemType;
  private batchTokens = '';
  private readonly masks = new Map<number | null, string>();
  private cos = '';
  private sin = '';

  /**
   * @param lmHead the tensors lm_head multiplies by, blocks of rows of the output embedding whose logits are joined:
   * by default the checkpoint's one (the embedding table when tied); the CPU inference graph gives the weight file's
   * blocks (weightFile.ts lmHeadBlocks), which ONNX Runtime packs one at a time
   */
  constructor(
    readonly config: ModelConfig,
    readonly g: Graph,
    private readonly bindWeight: WeightBinder,
    readonly dtype: Dtype,
    private readonly hooks: Hook[] = [],
    readonly lmHead = [outputEmbedding(config)],
  ) {
    this.dt = dtype;
  }

  /** Every layer over the new tokens; call once per Decoder. */
  forward(inputs: DecoderInputs): DecoderPass {
    const { g, config: c } = this;
    this.batchTokens = g.op('Shape', [inputs.ids]);
    this.rotaryTables(inputs.positions);
    const embedded = g.op('Reshape', [g.op('Gather', [this.weight('model.embed_tokens.weight'), inputs.ids]), g.ints([-1, c.hiddenSize])]);
    let x = this.toFloat32(embedded); // [N, C] float32
    const cache: KvCache = { keys: [], values: [] };
    for (let l = 0; l < c.numLayers; l++) x = this.layer(l, x, inputs, cache);
    return { residual: x, cache };
  }

  /** The final norm and lm_head on the flattened positions `rows` [M] only (every one when absent): [M, V] float32. */
  logitsAt(residual: string, rows?: string): string {
    const { g } = this;
    const selected = rows ? g.op('Gather', [residual, rows], { axis: 0 }) : residual; // [M, C]
    const normed = this.rmsNorm(selected, 'model.norm.weight');
    const blocks = this.lmHead.map((name) => g.op('Gemm', [normed, this.weight(name)], { transB: 1 }));
    return this.toFloat32(blocks.length === 1 ? blocks[0] : g.op('Concat', blocks, { axis: -1 }));
  }

  /** The parameter as the graph sees it (the binder decides whether it is an initializer or a trained value). */
  weight(name: string): string {
    return this.bindWeight(this.g, name);
  }

  /** y = x / sqrt(mean(x^2) + eps) * w over the last axis, in float32 whatever the graph's dtype. */
  rmsNorm(x: string, weightName: string): string {
    const { g, config: c } = this;
    const xf = this.toFloat32(x);
    const variance = g.op('ReduceMean', [g.op('Mul', [xf, xf]), g.ints([-1])], { keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(c.rmsNormEps)])])]);
    return g.op('Mul', [this.weight(weightName), this.fromFloat32(g.op('Mul', [xf, inv]))]);
  }

  /** gate, up and down projections with SiLU: the MLP of layer `l` on x [rows, C]. */
  mlp(l: number, x: string): string {
    const { g, config: c } = this;
    const p = `model.layers.${l}.mlp`;
    const gate = this.linear(x, `${p}.gate_proj`, c.mlpBias);
    const up = this.linear(x, `${p}.up_proj`, c.mlpBias);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate])]); // SiLU
    return this.linear(g.op('Mul', [act, up]), `${p}.down_proj`, c.mlpBias);
  }

  /** x W^T + b for x [rows, in] and W [out, in] as stored in the checkpoint. */
  linear(x: string, prefix: string, bias: boolean): string {
    const inputs = [x, this.weight(`${prefix}.weight`)];
    if (bias) inputs.push(this.weight(`${prefix}.bias`));
    return this.g.op('Gemm', inputs, { transB: 1 });
  }

  toFloat32(x: string): string {
    return this.dt === 'float32' ? x : this.g.op('Cast', [x], { to: OnnxDataType.FLOAT });
  }

  fromFloat32(x: string): string {
    return this.dt === 'float32' ? x : this.g.op('Cast', [x], { to: onnxType(this.dt) });
  }

  private layer(l: number, x: string, inputs: DecoderInputs, cache: KvCache): string {
    const { g } = this;
    const p = `model.layers.${l}`;
    x = this.at('hook_resid_pre', l, x);
    const attnIn = this.at('ln1.hook_normalized', l, this.rmsNorm(x, `${p}.input_layernorm.weight`)); // [N, C]
    const attnOut = this.at('hook_attn_out', l, this.attention(l, attnIn, inputs, cache));
    x = this.at('hook_resid_mid', l, g.op('Add', [x, this.toFloat32(attnOut)]));
    const mlpOut = this.at('hook_mlp_out', l, this.mlp(l, this.rmsNorm(x, `${p}.post_attention_layernorm.weight`)));
    return this.at('hook_resid_post', l, g.op('Add', [x, this.toFloat32(mlpOut)]));
  }

  /** The hooks at a site, in the order given: interventions first, then the readers that see their result. */
  private at(site: Site, layer: number, value: string): string {
    const ctx: HookContext = { g: this.g, config: this.config, dtype: this.dtype, layer, batchTokens: this.batchTokens };
    return this.hooks.filter((h) => h.site === site).reduce((v, h) => h.apply(ctx, v), value);
  }

  private attention(l: number, x: string, inputs: DecoderInputs, cache: KvCache): string {
    const { g, config: c } = this;
    const p = `model.layers.${l}.self_attn`;
    const q = this.heads(this.linear(x, `${p}.q_proj`, c.qkvBias), c.numHeads, c.qkNorm ? `${p}.q_norm.weight` : null);
    let k = this.heads(this.linear(x, `${p}.k_proj`, c.qkvBias), c.numKvHeads, c.qkNorm ? `${p}.k_norm.weight` : null);
    let v = this.heads(this.linear(x, `${p}.v_proj`, c.qkvBias), c.numKvHeads, null, false);
    if (inputs.past) {
      k = g.op('Concat', [inputs.past.keys[l], k], { axis: 2 });
      v = g.op('Concat', [inputs.past.values[l], v], { axis: 2 });
    }
    cache.keys.push(k);
    cache.values.push(v);
    const z = this.at('attn.hook_z', l, this.scaledDotProduct(l, q, k, v, inputs)); // [B, T, H, D]
    const zFlat = g.op('Reshape', [z, g.ints([-1, c.numHeads * c.headDim])]); // [N, H*D]
    return this.linear(zFlat, `${p}.o_proj`, c.oBias);
  }

  /** [N, heads*D] -> [B, heads, T, D], with the optional per-head RMSNorm and RoPE. */
  private heads(flat: string, heads: number, normWeight: string | null, rotate = true): string {
    const { g, config: c } = this;
    let t = g.op('Reshape', [flat, g.op('Concat', [this.batchTokens, g.ints([heads, c.headDim])], { axis: 0 })]); // [B, T, heads, D]
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
  private scaledDotProduct(l: number, q: string, k: string, v: string, inputs: DecoderInputs): string {
    const { g, config: c } = this;
    const scaled = g.op('Mul', [q, this.fromFloat32(g.scalar(c.headDim ** -0.5))]);
    const qGrouped = g.op('Reshape', [scaled, g.ints([0, c.numKvHeads, -1, c.headDim])]);
    const raw = g.op('MatMul', [qGrouped, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]); // [B, KV, nrep*T, K]
    const scores = this.toFloat32(g.op('Reshape', [raw, g.ints([0, c.numHeads, -1, 0])])); // softmax in float32, as transformers
    const masked = g.op('Add', [scores, this.maskBias(c.slidingWindows[l], inputs)]); // [B, H, T, K]
    const probs = this.at('attn.hook_pattern', l, g.op('Softmax', [masked], { axis: -1 }));
    const probsGrouped = g.op('Reshape', [this.fromFloat32(probs), g.ints([0, c.numKvHeads, -1, 0])]);
    const out = g.op('Reshape', [g.op('MatMul', [probsGrouped, v]), g.ints([0, c.numHeads, -1, c.headDim])]);
    return g.op('Transpose', [out], { perm: [0, 2, 1, 3] });
  }

  /** cos and sin [B, 1, T, D] of the positions, computed in float32 from the checkpoint's RoPE frequencies. */
  private rotaryTables(positions: string): void {
    const { g, config: c } = this;
    const invFreq = g.constant('inv_freq', 'float32', [1, 1, c.headDim / 2], inverseFrequencies(c.rope, c.headDim));
    const pos = g.op('Unsqueeze', [g.op('Cast', [positions], { to: OnnxDataType.FLOAT }), g.ints([2])]); // [B, T, 1]
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
  private maskBias(window: number | null, inputs: DecoderInputs): string {
    const cached = this.masks.get(window);
    if (cached) return cached;
    const { g } = this;
    const zero = g.scalar(0, 'int64');
    const one = g.scalar(1, 'int64');
    const keyCount = g.op('Squeeze', [g.op('Shape', [inputs.mask], { start: 1, end: 2 }), g.ints([0])]);
    const queryCount = g.op('Squeeze', [g.op('Shape', [inputs.ids], { start: 1, end: 2 }), g.ints([0])]);
    const keyIdx = g.op('Unsqueeze', [g.op('Range', [zero, keyCount, one]), g.ints([0])]); // [1, K]
    const queryIdx = g.op('Unsqueeze', [g.op('Range', [g.op('Sub', [keyCount, queryCount]), keyCount, one]), g.ints([1])]); // [T, 1]
    let allowed = g.op('LessOrEqual', [keyIdx, queryIdx]); // [T, K]
    if (window !== null) {
      const inWindow = g.op('Less', [g.op('Sub', [queryIdx, keyIdx]), g.scalar(window, 'int64')]);
      allowed = g.op('And', [allowed, inWindow]);
    }
    const notPadding = g.op('Unsqueeze', [g.op('Cast', [inputs.mask], { to: OnnxDataType.BOOL }), g.ints([1, 2])]); // [B, 1, 1, K]
    const bias = g.op('Where', [g.op('And', [notPadding, allowed]), g.scalar(0), g.scalar(MASKED_SCORE)]); // [B, 1, T, K]
    this.masks.set(window, bias);
    return bias;
  }
}
