import type { ModelConfig } from '../checkpoint/config';
import { expectedTensorShapes } from '../checkpoint/checkpoint';
import type { Graph } from '../onnx/graph';
import type { HeadRef } from '../../../src/protocol/heads';

/**
 * What a tuning run may change. `heads` (pinpoint tuning): for each tuned head its q rows and o columns, optionally
 * the k and v rows of its KV group, and the matching q/k/v bias entries; `attention`: every attention projection;
 * `full`: every parameter (the SFT baseline). Everything else is frozen and stays an initializer of the graph.
 */
/** what is trained: the chosen heads' slices, every attention projection, or every parameter (the SFT baseline) */
export const TUNE_MODES = ['heads', 'attention', 'full'] as const;
export type TuneMode = (typeof TUNE_MODES)[number];

export interface TuneSpec {
  mode: TuneMode;
  /** the tuned heads, for mode `heads` */
  heads: HeadRef[];
  /** with mode `heads`: also tune the k and v rows of each tuned head's KV group */
  includeKeyValue: boolean;
}

/** A trainable block of a tensor: rows [start, end) (axis 0) or columns [start, end) (axis 1). */
export interface ParamSlice {
  /** names the block: in the training graph's inputs and outputs (`param:<id>`, ...) and in checkpoints */
  id: string;
  tensor: string;
  axis: 0 | 1;
  start: number;
  end: number;
  /** the block's shape */
  shape: number[];
  /** the whole tensor's shape */
  tensorShape: number[];
  /** decoupled weight decay applies to weight matrices, not to biases and norm weights (as transformers' Trainer) */
  decays: boolean;
}

export function trainableSlices(config: ModelConfig, spec: TuneSpec): ParamSlice[] {
  const shapes = expectedTensorShapes(config);
  const whole = (name: string) => slice(name, 0, 0, shapes.get(name)![0], shapes.get(name)!);
  switch (spec.mode) {
    case 'full':
      return [...shapes.keys()].map(whole);
    case 'attention':
      return [...shapes.keys()].filter((name) => /\.self_attn\.[qkvo]_proj\./.test(name)).map(whole);
    case 'heads':
      return headSlices(config, spec, shapes);
  }
}

function headSlices(config: ModelConfig, spec: TuneSpec, shapes: Map<string, number[]>): ParamSlice[] {
  const D = config.headDim;
  const group = config.numHeads / config.numKvHeads;
  const slices = new Map<string, ParamSlice>();
  const add = (name: string, axis: 0 | 1, block: number) => {
    const s = slice(name, axis, block * D, (block + 1) * D, shapes.get(name)!);
    slices.set(s.id, s);
  };
  for (const { layer, head } of spec.heads) {
    if (layer < 0 || layer >= config.numLayers || head < 0 || head >= config.numHeads) {
      throw new RangeError(`head ${layer}.${head} does not exist (layers 0..${config.numLayers - 1}, heads 0..${config.numHeads - 1})`);
    }
    const p = `model.layers.${layer}.self_attn`;
    add(`${p}.q_proj.weight`, 0, head);
    if (config.qkvBias) add(`${p}.q_proj.bias`, 0, head);
    add(`${p}.o_proj.weight`, 1, head);
    if (!spec.includeKeyValue) continue;
    const kv = Math.floor(head / group);
    for (const proj of ['k_proj', 'v_proj']) {
      add(`${p}.${proj}.weight`, 0, kv);
      if (config.qkvBias) add(`${p}.${proj}.bias`, 0, kv);
    }
  }
  return [...slices.values()].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}

function slice(tensor: string, axis: 0 | 1, start: number, end: number, full: number[]): ParamSlice {
  const shape = [...full];
  shape[axis] = end - start;
  const decays = full.length === 2 && !tensor.endsWith('norm.weight');
  return { id: `${tensor}[${axis === 0 ? `${start}:${end}` : `:,${start}:${end}`}]`, tensor, axis, start, end, shape, tensorShape: full, decays };
}

/**
 * Binds each parameter of the training graph: a frozen tensor is an initializer; a tensor with trainable
 * blocks is assembled by concatenating its frozen stretches (slices of the initializer) and the blocks' values
 * (`block`: the graph inputs, cast to the graph's dtype), along the blocks' axis, once per graph.
 */
export function trainingBinder(
  slices: ParamSlice[],
  frozen: (g: Graph, name: string) => string,
  block: (s: ParamSlice) => string,
): (g: Graph, name: string) => string {
  const byTensor = new Map<string, ParamSlice[]>();
  for (const s of slices) byTensor.set(s.tensor, [...(byTensor.get(s.tensor) ?? []), s]);
  const bound = new Map<string, string>();
  return (g, name) => {
    const blocks = byTensor.get(name);
    if (!blocks) return frozen(g, name);
    let value = bound.get(name);
    if (!value) {
      value = assemble(g, name, blocks, frozen, block);
      bound.set(name, value);
    }
    return value;
  };
}

function assemble(
  g: Graph,
  name: string,
  blocks: ParamSlice[],
  frozen: (g: Graph, name: string) => string,
  block: (s: ParamSlice) => string,
): string {
  const { axis } = blocks[0];
  const extent = blocks[0].tensorShape[axis];
  const sorted = [...blocks].sort((a, b) => a.start - b.start);
  if (sorted.length === 1 && sorted[0].start === 0 && sorted[0].end === extent) return block(sorted[0]);
  const pieces: string[] = [];
  let at = 0;
  const frozenPart = (from: number, to: number) => g.op('Slice', [frozen(g, name), g.ints([from]), g.ints([to]), g.ints([axis])]);
  for (const b of sorted) {
    if (b.start > at) pieces.push(frozenPart(at, b.start));
    pieces.push(block(b));
    at = b.end;
  }
  if (at < extent) pieces.push(frozenPart(at, extent));
  return g.op('Concat', pieces, { axis });
}

/** The block's values, copied out of the whole tensor (row-major, PyTorch layout). */
export function readBlock(tensor: Float32Array, s: ParamSlice): Float32Array {
  if (s.axis === 0) {
    const width = s.tensorShape.slice(1).reduce((a, b) => a * b, 1);
    return tensor.slice(s.start * width, s.end * width);
  }
  const [rows, cols] = s.tensorShape;
  const out = new Float32Array(rows * (s.end - s.start));
  for (let r = 0; r < rows; r++) out.set(tensor.subarray(r * cols + s.start, r * cols + s.end), r * (s.end - s.start));
  return out;
}

/** Writes the block's values back into the whole tensor. */
export function writeBlock(tensor: Float32Array, s: ParamSlice, block: Float32Array): void {
  if (s.axis === 0) {
    const width = s.tensorShape.slice(1).reduce((a, b) => a * b, 1);
    tensor.set(block, s.start * width);
    return;
  }
  const [rows, cols] = s.tensorShape;
  const w = s.end - s.start;
  for (let r = 0; r < rows; r++) tensor.set(block.subarray(r * w, (r + 1) * w), r * cols + s.start);
}
