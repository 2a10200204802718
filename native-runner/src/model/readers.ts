import { OnnxDataType } from '../onnx/schema';
import type { Hook, HookContext } from './sites';

/**
 * Hooks that copy values out of the forward pass without changing them. Each keeps, per layer, the value it read,
 * for the graph that owns it to output.
 */

/** Each layer's head outputs at chosen flattened positions: `attn.hook_z` gathered at `rows` [Mz], [Mz, H*D] float32. */
export class ZReader implements Hook {
  readonly site = 'attn.hook_z';
  readonly values: string[] = [];

  constructor(private readonly rows: string) {}

  apply({ g, config: c, dtype }: HookContext, z: string): string {
    const flat = g.op('Reshape', [z, g.ints([-1, c.numHeads * c.headDim])]); // [N, H*D]
    const picked = g.op('Gather', [flat, this.rows], { axis: 0 });
    this.values.push(dtype === 'float32' ? picked : g.op('Cast', [picked], { to: OnnxDataType.FLOAT }));
    return z;
  }
}

/**
 * One head's attention pattern in row 0, for the head `head` [2] = (layer, head) given at run time: each layer
 * adds its [T, K] slice weighted by whether it is the chosen layer, so one compiled graph serves every head and
 * only two [T, K] values are alive at a time, whatever the number of layers.
 */
export class PatternReader implements Hook {
  readonly site = 'attn.hook_pattern';
  /** [T, K] float32 once every layer has been read */
  pattern = '';

  constructor(private readonly head: string) {}

  apply({ g, layer }: HookContext, probs: string): string {
    const row = g.op('Gather', [probs, g.scalar(0, 'int64')], { axis: 0 }); // [H, T, K]
    const slice = g.op('Gather', [row, g.op('Gather', [this.head, g.scalar(1, 'int64')])], { axis: 0 }); // [T, K]
    const chosen = g.op('Cast', [g.op('Equal', [g.op('Gather', [this.head, g.scalar(0, 'int64')]), g.scalar(layer, 'int64')])], {
      to: OnnxDataType.FLOAT,
    });
    const weighted = g.op('Mul', [slice, chosen]);
    this.pattern = layer === 0 ? weighted : g.op('Add', [this.pattern, weighted]);
    return probs;
  }
}
