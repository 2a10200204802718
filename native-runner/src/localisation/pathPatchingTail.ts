import type { Graph } from '../onnx/graph';
import type { Decoder } from '../model/decoder';
import type { Hook, HookContext, Site } from '../model/sites';

/**
 * Path patching of every head in one run, exploiting its structure. Rows 0 (reference) and 1 (counterfactual)
 * run the full prompt once. Patching head (l, h) at the last position while every later layer's attention
 * input is held at the reference values leaves every other position, and every attention output, exactly as
 * in the reference run; the only change is the head's contribution to the last position's residual stream:
 * delta = W_o[:, hD:(h+1)D] (z_cf - z_ref), which then passes through the MLPs of layers l..L-1 and the final
 * norm. So each head costs a handful of single-vector MLPs instead of a forward pass over the whole prompt.
 *
 * The tail keeps one row per head, in layer order: at layer j the rows of heads in earlier layers receive the
 * reference attention output (held), the heads of layer j are born from the reference residual plus their
 * delta, and all rows go through MLP j. Only the target tokens' logits are computed: [L*H, K], row l*H + h for
 * head (l, h).
 */

/** Reads, per layer, what the tail needs of rows 0 and 1 at the last position: [2, ...] slices, cheap to keep. */
export class PathPatchingTaps {
  readonly attnOut: string[] = [];
  readonly residMid: string[] = [];
  /** [2, H, D] */
  readonly z: string[] = [];

  hooks(): Hook[] {
    return [this.tap('hook_attn_out', this.attnOut, true), this.tap('hook_resid_mid', this.residMid, true), this.tap('attn.hook_z', this.z, false)];
  }

  private tap(site: Site, into: string[], flat: boolean): Hook {
    return {
      site,
      apply: ({ g, config: c, batchTokens }: HookContext, value: string) => {
        const rows = flat ? g.op('Reshape', [value, g.op('Concat', [batchTokens, g.ints([c.hiddenSize])], { axis: 0 })]) : value; // [B, T, ...]
        const last = g.op('Squeeze', [g.op('Slice', [rows, g.ints([-1]), g.ints([Number.MAX_SAFE_INTEGER]), g.ints([1])]), g.ints([1])]); // [B, ...]
        into.push(g.op('Slice', [last, g.ints([0]), g.ints([2]), g.ints([0])])); // rows 0 and 1 (fewer in a smaller batch)
        return value;
      },
    };
  }
}

/** The tail, written with `decoder`'s weights and blocks into its graph: [L*H, K] float32 target logits. */
export function pathPatchingTail(decoder: Decoder, taps: PathPatchingTaps, targets: string): string {
  const { g, config: c } = decoder;
  const reference = (value: string) => g.op('Slice', [value, g.ints([0]), g.ints([1]), g.ints([0])]); // [1, C]
  let rows = '';
  for (let j = 0; j < c.numLayers; j++) {
    const born = g.op('Add', [reference(taps.residMid[j]), decoder.toFloat32(headDeltas(g, decoder, j, taps.z[j]))]); // [H, C]
    rows = j === 0 ? born : g.op('Concat', [g.op('Add', [rows, decoder.toFloat32(reference(taps.attnOut[j]))]), born], { axis: 0 });
    const mlpIn = decoder.rmsNorm(rows, `model.layers.${j}.post_attention_layernorm.weight`);
    rows = g.op('Add', [rows, decoder.toFloat32(decoder.mlp(j, mlpIn))]); // [(j+1)H, C]
  }
  return targetLogits(decoder, rows, targets);
}

/** The final norm and the target tokens' rows of lm_head only: [rows, K] float32 logits of residual rows [rows, C]. */
export function targetLogits(decoder: Decoder, rows: string, targets: string): string {
  const { g } = decoder;
  const targetRows = g.op('Gather', [decoder.weight(decoder.lmHead[0]), targets], { axis: 0 }); // [K, C] of the whole table
  return decoder.toFloat32(g.op('Gemm', [decoder.rmsNorm(rows, 'model.norm.weight'), targetRows], { transB: 1 }));
}

/**
 * Each head's change to the attention output at the last position, [H, C]: the differences
 * z_cf - z_ref [H, D] laid out block-diagonally as [H, H*D], times W_o^T, so W_o is used as stored.
 */
function headDeltas(g: Graph, decoder: Decoder, layer: number, z: string): string {
  const { config: c } = decoder;
  const pick = (row: number) => g.op('Slice', [z, g.ints([row]), g.ints([row + 1]), g.ints([0])]); // [1, H, D]
  const diff = g.op('Sub', [pick(1), pick(0)]);
  const eye = g.constant('eye', 'float32', [c.numHeads, c.numHeads, 1], identity(c.numHeads));
  const blocks = g.op('Mul', [diff, decoder.fromFloat32(eye)]); // [H, H, D]
  const flat = g.op('Reshape', [blocks, g.ints([c.numHeads, c.numHeads * c.headDim])]);
  return g.op('Gemm', [flat, decoder.weight(`model.layers.${layer}.self_attn.o_proj.weight`)], { transB: 1 });
}

function identity(n: number): number[] {
  return Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));
}
