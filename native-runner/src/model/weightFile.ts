import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Checkpoint } from '../checkpoint/checkpoint';
import { outputEmbedding, type ModelConfig } from '../checkpoint/config';
import { float32ToBfloat16, float32ToFloat16 } from '../checkpoint/halfFloat';
import { tensorByteChunks, tensorPieces, type TensorInfo } from '../checkpoint/safetensors';
import type { ExternalTensor, Graph } from '../onnx/graph';
import type { Dtype } from '../../../src/protocol/protocol';

/**
 * The checkpoint's weights in the graph's dtype, laid out in one file that every graph of the model refers to as
 * ONNX external data. ONNX Runtime only reads external data from inside the model's folder (no absolute paths,
 * no symlinks out), so graphs are written next to this file. It is built a few MB at a time, so converting a
 * large checkpoint needs little memory, and it is cached by the checkpoint's content.
 */

export interface WeightFile {
  /** folder holding weights.bin and the compiled graphs */
  dir: string;
  dtype: Dtype;
  tensors: Map<string, ExternalTensor>;
}

const FILE = 'weights.bin';
const INDEX = 'weights.json';
const ALIGN = 64;

export function cacheRoot(): string {
  if (process.env.PINPOINT_CACHE) return process.env.PINPOINT_CACHE;
  const xdg = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(xdg, 'pinpoint');
}

/** `weightsSha256`: the checkpoint's content identity (model/weightsSha256.ts), which names its cache folder. */
export function prepareWeightFile(checkpoint: Checkpoint, dtype: Dtype, weightsSha256: string): WeightFile {
  const dir = path.join(cacheRoot(), 'models', checkpointKey(checkpoint, dtype, weightsSha256));
  const indexPath = path.join(dir, INDEX);
  if (!fs.existsSync(indexPath)) writeWeightFile(checkpoint, dtype, dir);
  const index = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as Record<string, ExternalTensor>;
  return { dir, dtype, tensors: new Map(Object.entries(index)) };
}

/**
 * What the weight file is made of: the weights' content, where each tensor lies in them (by file index, not path,
 * so that a moved folder keeps its cache) and the target dtype.
 */
function checkpointKey(checkpoint: Checkpoint, dtype: Dtype, weightsSha256: string): string {
  const files = checkpoint.weights.files;
  const layout = withOwnLmHead(checkpoint).map(([name, t]) => [name, t.dtype, t.shape, files.indexOf(t.file), t.byteOffset, t.byteLength]);
  return crypto
    .createHash('sha256')
    .update(`v4 ${dtype} ${weightsSha256} ${JSON.stringify(layout)}`)
    .digest('hex')
    .slice(0, 32);
}

function writeWeightFile(checkpoint: Checkpoint, dtype: Dtype, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `${FILE}.tmp-${process.pid}`);
  const fd = fs.openSync(tmp, 'w');
  const index: Record<string, ExternalTensor> = {};
  let offset = 0;
  try {
    for (const [name, info] of withOwnLmHead(checkpoint)) {
      let length = 0;
      for (const piece of convertedPieces(info, dtype)) {
        fs.writeSync(fd, piece, 0, piece.length, offset + length);
        length += piece.length;
      }
      index[name] = { elemType: dtype, dims: info.shape, location: FILE, offset, length };
      offset += Math.ceil(length / ALIGN) * ALIGN;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, FILE));
  writeFileAtomic(path.join(dir, INDEX), JSON.stringify(index));
}

/**
 * The output embedding once more, in blocks of rows of at most 2^24 values, for the products that ONNX Runtime keeps
 * packed (the CPU inference graph, which multiplies by each block and joins the logits). A weight is packed from
 * its mapped copy, and both are resident until the packing is done, so a large table packed whole would briefly
 * count twice; and the embedding lookup of a tied model keeps reading its own table, of which only the rows looked up
 * are ever brought into memory.
 */
export function lmHeadBlocks(config: ModelConfig): { name: string; rows: [number, number] }[] {
  const perBlock = Math.max(1, Math.floor(2 ** 24 / config.hiddenSize));
  return Array.from({ length: Math.ceil(config.vocabSize / perBlock) }, (_, i) => ({
    name: `lm_head.block.${i}`,
    rows: [i * perBlock, Math.min(config.vocabSize, (i + 1) * perBlock)] as [number, number],
  }));
}

/** The checkpoint's tensors, then the output embedding's blocks (lmHeadBlocks). */
function withOwnLmHead(checkpoint: Checkpoint): [string, TensorInfo][] {
  const { config } = checkpoint;
  const table = checkpoint.tensors.get(outputEmbedding(config))!;
  const rowBytes = table.byteLength / config.vocabSize;
  const blocks = lmHeadBlocks(config).map(({ name, rows: [start, end] }): [string, TensorInfo] => [
    name,
    {
      ...table,
      name,
      shape: [end - start, config.hiddenSize],
      byteOffset: table.byteOffset + start * rowBytes,
      byteLength: (end - start) * rowBytes,
    },
  ]);
  return [...checkpoint.tensors, ...blocks];
}

/** The tensor in the graph's dtype, a few MB at a time, so that converting a model never holds a whole tensor. */
function* convertedPieces(info: TensorInfo, dtype: Dtype): Generator<Uint8Array> {
  if (dtype === 'float32' && info.dtype === 'F32') return yield* tensorByteChunks(info);
  for (const values of tensorPieces(info)) {
    const out = dtype === 'float32' ? values : dtype === 'float16' ? float32ToFloat16(values) : float32ToBfloat16(values);
    yield new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Binds every parameter to its tensor in the weight file, as an initializer of the root graph that every subgraph
 * reads: ONNX Runtime maps an initializer once per graph that declares it, so one declared in a Loop body or an
 * If branch would be a second copy in the process.
 */
export function fileWeights(weights: WeightFile): (g: Graph, name: string) => string {
  return (g, name) => {
    const { root } = g;
    if (root.initializers.has(name)) return name;
    const tensor = weights.tensors.get(name);
    if (!tensor) throw new Error(`weight ${name} is not in the weight file`);
    return root.initializer(name, tensor);
  };
}
