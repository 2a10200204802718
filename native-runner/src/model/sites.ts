import type { ModelConfig } from '../checkpoint/config';
import type { Graph } from '../onnx/graph';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * The places in the decoder where a value can be read or replaced, named as TransformerLens names its hook points:
 * `blocks.3.attn.hook_z` is the head outputs of layer 3, whether a reader copies them out or an intervention
 * patches them. Every reader and every intervention is a `Hook` at one of these sites, so the two speak one
 * vocabulary and the decoder knows neither.
 *
 * Values at each site, per layer (N = B * T flattened positions, K = cached + new keys):
 * - `hook_resid_pre`       [N, C] float32, the residual stream entering the block
 * - `ln1.hook_normalized`  [N, C] graph dtype, the attention block's input (after input_layernorm)
 * - `attn.hook_pattern`    [B, H, T, K] float32, the attention probabilities
 * - `attn.hook_z`          [B, T, H, D] graph dtype, each head's output, the input of o_proj
 * - `hook_attn_out`        [N, C] graph dtype, the attention block's output
 * - `hook_resid_mid`       [N, C] float32, the residual stream after attention
 * - `hook_mlp_out`         [N, C] graph dtype, the MLP's output
 * - `hook_resid_post`      [N, C] float32, the residual stream leaving the block
 */
export const SITES = [
  'hook_resid_pre',
  'ln1.hook_normalized',
  'attn.hook_pattern',
  'attn.hook_z',
  'hook_attn_out',
  'hook_resid_mid',
  'hook_mlp_out',
  'hook_resid_post',
] as const;

export type Site = (typeof SITES)[number];

/** The site's full name, as TransformerLens writes it. */
export function siteName(layer: number, site: Site): string {
  return `blocks.${layer}.${site}`;
}

export interface HookContext {
  g: Graph;
  config: ModelConfig;
  dtype: Dtype;
  layer: number;
  /** Shape(input_ids): [B, T] as a 1-D int64 value, for reshapes between [N, ...] and [B, T, ...] */
  batchTokens: string;
}

/** Something done to the value at a site: a reader returns the value unchanged, an intervention a replacement. */
export interface Hook {
  site: Site;
  apply(ctx: HookContext, value: string): string;
}
