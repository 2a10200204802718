/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON describing each
 * tensor, then the tensors' bytes (offsets in the JSON count from the end of the header).
 * Pickle weights (pytorch_model.bin) are never read: unpickling runs arbitrary code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from './halfFloat';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Every refusal to load a checkpoint: says which file and what was expected of it. */
export class CheckpointError extends Error {
  readonly file: string;

  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** absolute path */
  file: string;
  /** absolute offset of the data in the file */
  byteOffset: number;
  byteLength: number;
}

export interface WeightIndex {
  /** absolute paths of the safetensors files, one or the shards */
  files: string[];
  /** the file that says which tensors exist: model.safetensors or model.safetensors.index.json */
  source: string;
  tensors: Map<string, TensorInfo>;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
const PICKLE_EXTENSIONS = ['.bin', '.pt', '.pth'];
/** The Rust library's limit: a larger header is a corrupt length, not a real header. */
const MAX_HEADER_BYTES = 100_000_000;

export function readSafetensorsHeader(file: string): Map<string, TensorInfo> {
  return readSafetensors(file).tensors;
}

/** The header's tensors and its `__metadata__` (string to string, as the format defines it). */
export function readSafetensors(file: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const absolute = path.resolve(file);
  const fd = openForReading(absolute);
  try {
    const fileSize = fs.fstatSync(fd).size;
    const headerLength = readHeaderLength(fd, absolute, fileSize);
    const header = parseHeaderJson(readAt(fd, 8, headerLength), absolute);
    const metadata = isRecord(header.__metadata__) ? (header.__metadata__ as Record<string, string>) : {};
    return { tensors: tensorsOfHeader(header, absolute, 8 + headerLength, fileSize), metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function openForReading(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    throw new CheckpointError(file, `cannot be opened (${(err as Error).message})`);
  }
}

function readHeaderLength(fd: number, file: string, fileSize: number): number {
  if (fileSize < 8) {
    throw new CheckpointError(file, `is ${fileSize} bytes, shorter than the 8-byte header length every safetensors file starts with`);
  }
  const length = readAt(fd, 0, 8).readBigUInt64LE(0);
  if (length > BigInt(fileSize - 8)) {
    throw new CheckpointError(
      file,
      `header length ${length} reaches beyond the end of the file (${fileSize} bytes): not a safetensors file, or truncated`,
    );
  }
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(file, `header length ${length} is over the ${MAX_HEADER_BYTES}-byte limit of safetensors headers`);
  }
  return Number(length);
}

function parseHeaderJson(bytes: Buffer, file: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CheckpointError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(header)) throw new CheckpointError(file, 'header is not a JSON object of tensors');
  return header;
}

function tensorsOfHeader(header: Record<string, unknown>, file: string, dataStart: number, fileSize: number): Map<string, TensorInfo> {
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, tensorOfEntry(name, entry, file, dataStart, fileSize));
  }
  checkNoOverlap([...tensors.values()], file);
  return tensors;
}

function tensorOfEntry(name: string, entry: unknown, file: string, dataStart: number, fileSize: number): TensorInfo {
  if (!isRecord(entry)) throw new CheckpointError(file, `tensor ${name}: expected {dtype, shape, data_offsets}`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new CheckpointError(file, `tensor ${name} has dtype ${JSON.stringify(dtype)}, expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new CheckpointError(file, `tensor ${name} has shape ${JSON.stringify(shape)}, expected a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw new CheckpointError(file, `tensor ${name} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with begin <= end`);
  }
  const info: TensorInfo = {
    name,
    dtype: dtype as SafetensorsDtype,
    shape,
    file,
    byteOffset: dataStart + offsets[0],
    byteLength: offsets[1] - offsets[0],
  };
  checkSize(info, file, fileSize);
  return info;
}

function checkSize(info: TensorInfo, file: string, fileSize: number): void {
  const needed = elementCount(info.shape) * DTYPE_BYTES[info.dtype];
  if (needed !== info.byteLength) {
    throw new CheckpointError(
      file,
      `tensor ${info.name}: shape ${formatShape(info.shape)} of ${info.dtype} needs ${needed} bytes but data_offsets span ${info.byteLength}`,
    );
  }
  const end = info.byteOffset + info.byteLength;
  if (end > fileSize) {
    throw new CheckpointError(file, `truncated: tensor ${info.name} needs bytes up to ${end} but the file has ${fileSize}`);
  }
}

function checkNoOverlap(tensors: TensorInfo[], file: string): void {
  const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1];
    const after = sorted[i];
    if (after.byteOffset < before.byteOffset + before.byteLength) {
      throw new CheckpointError(file, `tensors ${before.name} and ${after.name} overlap: their data_offsets share bytes`);
    }
  }
}

export function openWeights(dir: string): WeightIndex {
  const absolute = path.resolve(dir);
  const single = path.join(absolute, SINGLE_FILE);
  if (fs.existsSync(single)) return { files: [single], source: single, tensors: readSafetensorsHeader(single) };
  const index = path.join(absolute, INDEX_FILE);
  if (fs.existsSync(index)) return openShardedWeights(absolute, index);
  throw noWeightsError(absolute);
}

function openShardedWeights(dir: string, indexFile: string): WeightIndex {
  const weightMap = readWeightMap(indexFile);
  const shardNames = [...new Set(weightMap.values())];
  const headers = new Map(shardNames.map((shard) => [shard, readShard(dir, indexFile, shard)]));
  checkShardsAgainstMap(headers, weightMap, indexFile);
  const tensors = new Map<string, TensorInfo>();
  for (const [name, shard] of weightMap) tensors.set(name, headers.get(shard)!.get(name)!);
  return { files: shardNames.map((shard) => path.join(dir, shard)), source: indexFile, tensors };
}

function readWeightMap(indexFile: string): Map<string, string> {
  let index: unknown;
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (err) {
    throw new CheckpointError(indexFile, `is not valid JSON (${(err as Error).message})`);
  }
  const weightMap = isRecord(index) ? index.weight_map : undefined;
  if (!isRecord(weightMap) || !Object.values(weightMap).every((shard) => typeof shard === 'string')) {
    throw new CheckpointError(indexFile, 'expected {"weight_map": {tensor name: shard file name}}');
  }
  return new Map(Object.entries(weightMap as Record<string, string>));
}

function readShard(dir: string, indexFile: string, shard: string): Map<string, TensorInfo> {
  // A shard name with a path in it could point anywhere on disk.
  if (path.basename(shard) !== shard) {
    throw new CheckpointError(indexFile, `weight_map names shard "${shard}", expected a file name in ${dir}`);
  }
  const file = path.join(dir, shard);
  if (!fs.existsSync(file)) throw new CheckpointError(indexFile, `weight_map lists shard ${shard}, which is missing from ${dir}`);
  return readSafetensorsHeader(file);
}

function checkShardsAgainstMap(headers: Map<string, Map<string, TensorInfo>>, weightMap: Map<string, string>, indexFile: string): void {
  const foundIn = new Map<string, string>();
  for (const [shard, tensors] of headers) {
    for (const name of tensors.keys()) {
      const other = foundIn.get(name);
      if (other !== undefined) throw new CheckpointError(indexFile, `tensor ${name} is stored twice, in ${other} and in ${shard}`);
      foundIn.set(name, shard);
      if (!weightMap.has(name)) throw new CheckpointError(indexFile, `shard ${shard} holds tensor ${name}, which weight_map does not list`);
    }
  }
  for (const [name, shard] of weightMap) {
    if (!headers.get(shard)!.has(name)) {
      throw new CheckpointError(indexFile, `weight_map puts tensor ${name} in ${shard}, but that shard has no such tensor`);
    }
  }
}

function noWeightsError(dir: string): CheckpointError {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    return new CheckpointError(dir, `cannot list the checkpoint folder (${(err as Error).message})`);
  }
  const pickles = entries.filter((entry) => PICKLE_EXTENSIONS.includes(path.extname(entry).toLowerCase()));
  if (pickles.length > 0) {
    return new CheckpointError(
      dir,
      `has only pickle weights (${pickles.join(', ')}), and pickle weights are never unpickled because ` +
        'loading a pickle can run arbitrary code. Convert the checkpoint to safetensors, e.g. in Python with transformers: ' +
        'AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out_dir, safe_serialization=True)',
    );
  }
  return new CheckpointError(dir, `no ${SINGLE_FILE} or ${INDEX_FILE} found in this folder`);
}

/** The tensor's bytes exactly as stored (little-endian). */
export function readTensorBytes(info: TensorInfo): Buffer {
  const bytes = Buffer.alloc(info.byteLength);
  readInto(info, bytes);
  return bytes;
}

/**
 * The same bytes in pieces of at most `size`, read one at a time, for copying a large tensor with little memory.
 * These pieces, and tensorPieces', are what the runner builds its weight file from, so each is refused here if it
 * holds a NaN or an infinity: checked as it is read, the weights are never read twice.
 */
export function* tensorByteChunks(info: TensorInfo, size = 1 << 23): Generator<Uint8Array> {
  for (let start = 0; start < info.byteLength; start += size) {
    const length = Math.min(size, info.byteLength - start);
    const chunk = readInto({ ...info, byteOffset: info.byteOffset + start, byteLength: length }, Buffer.alloc(length));
    checkFinite(info, info.dtype, chunk, start / DTYPE_BYTES[info.dtype]);
    yield chunk;
  }
}

/** The tensor as float32 in pieces of at most `elements` values, each read and converted on its own (and checked finite). */
export function* tensorPieces(info: TensorInfo, elements = 1 << 21): Generator<Float32Array> {
  const width = DTYPE_BYTES[info.dtype];
  const count = elementCount(info.shape);
  for (let start = 0; start < count; start += elements) {
    const n = Math.min(elements, count - start);
    const values = readTensor({ ...info, shape: [n], byteOffset: info.byteOffset + start * width, byteLength: n * width });
    checkFinite(info, 'F32', values, start);
    yield values;
  }
}

/** The exponent bits of each float format: all of them set is an infinity (mantissa zero) or a NaN. */
const EXPONENT_BITS: Partial<Record<SafetensorsDtype, number>> = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 };

/**
 * The index of the first NaN or infinite value of `data`, stored as `dtype`, or -1; never found in the dtypes no model
 * is loaded from (integers, F64). Read from the bits, so that the check is one pass and converts nothing. `data` must
 * be aligned to the dtype's width, as typed arrays and freshly allocated buffers are.
 */
export function firstNonFinite(dtype: SafetensorsDtype, data: ArrayBufferView): number {
  const mask = EXPONENT_BITS[dtype];
  if (mask === undefined) return -1;
  const words =
    DTYPE_BYTES[dtype] === 4
      ? new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4)
      : new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  for (let i = 0; i < words.length; i++) if ((words[i] & mask) === mask) return i;
  return -1;
}

/** `data` is elements `first`, `first + 1`, ... of the tensor, stored as `dtype`. */
function checkFinite(info: TensorInfo, dtype: SafetensorsDtype, data: ArrayBufferView, first: number): void {
  const at = firstNonFinite(dtype, data);
  if (at < 0) return;
  const element = first + at;
  const width = DTYPE_BYTES[info.dtype];
  const [value] = readTensor({ ...info, shape: [1], byteOffset: info.byteOffset + element * width, byteLength: width });
  throw new CheckpointError(
    info.file,
    `tensor ${info.name} holds ${value} at element ${element} of its ${formatShape(info.shape)}: ` +
      "a model's weights must be finite (one NaN or infinity makes every output NaN); the checkpoint is damaged, or was saved from a diverged training run",
  );
}

/**
 * The tensor as float32. The bytes are read straight into a fresh typed array, because the tensor's
 * offset in the file need not be a multiple of 2 or 4 and typed-array views must be aligned.
 * Assumes a little-endian host, as safetensors and every platform Node ships for are.
 */
export function readTensor(info: TensorInfo): Float32Array {
  const count = elementCount(info.shape);
  switch (info.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      readInto(info, new Uint8Array(out.buffer));
      return out;
    }
    case 'F16':
      return float16ToFloat32(readUint16(info, count));
    case 'BF16':
      return bfloat16ToFloat32(readUint16(info, count));
    case 'F64': {
      const wide = new Float64Array(count);
      readInto(info, new Uint8Array(wide.buffer));
      return Float32Array.from(wide);
    }
    default:
      throw new CheckpointError(info.file, `tensor ${info.name} is ${info.dtype}; only F32, F16, BF16 and F64 tensors read as float32`);
  }
}

function readUint16(info: TensorInfo, count: number): Uint16Array {
  const bits = new Uint16Array(count);
  readInto(info, new Uint8Array(bits.buffer));
  return bits;
}

function readInto<T extends Uint8Array>(info: TensorInfo, target: T): T {
  const fd = openForReading(info.file);
  try {
    let done = 0;
    while (done < info.byteLength) {
      const read = fs.readSync(fd, target, done, info.byteLength - done, info.byteOffset + done);
      if (read === 0) {
        throw new CheckpointError(
          info.file,
          `truncated: tensor ${info.name} needs bytes up to ${info.byteOffset + info.byteLength} but the file ended at ${info.byteOffset + done}`,
        );
      }
      done += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  return target;
}

/** Reads a range the caller has already checked lies within the file. */
function readAt(fd: number, position: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, bytes, done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return bytes;
}

/** float32 values, converted to the tensor's dtype on writing, or bytes already in that dtype (whole or in pieces). */
export type TensorData = Float32Array | Uint8Array | Iterable<Uint8Array>;

export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  /** the data, or a function that makes it when the tensor is written, so that one tensor at a time is in memory */
  data: TensorData | (() => TensorData);
}

/** Writes in the given order, converting float32 data to each tensor's dtype, one tensor at a time; atomic by rename. */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const names = new Set<string>();
  let offset = 0;
  for (const tensor of tensors) {
    if (names.has(tensor.name)) throw new CheckpointError(file, `tensor name ${tensor.name} is given twice`);
    names.add(tensor.name);
    const bytes = encodedByteLength(tensor);
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  writeFileAtomic(
    file,
    (function* chunks() {
      yield headerBytes(header);
      for (const tensor of tensors) yield* encodeTensor(tensor, file);
    })(),
  );
}

function* encodeTensor(tensor: TensorToWrite, file: string): Generator<Uint8Array> {
  const data = typeof tensor.data === 'function' ? tensor.data() : tensor.data;
  if (!(data instanceof Float32Array)) {
    let bytes = 0;
    for (const chunk of data instanceof Uint8Array ? [data] : data) {
      bytes += chunk.byteLength;
      yield chunk;
    }
    if (bytes !== encodedByteLength(tensor)) {
      throw new CheckpointError(
        file,
        `tensor ${tensor.name} has ${bytes} bytes but ${tensor.dtype} ${formatShape(tensor.shape)} takes ${encodedByteLength(tensor)}`,
      );
    }
    return;
  }
  const count = elementCount(tensor.shape);
  if (data.length !== count) {
    throw new CheckpointError(file, `tensor ${tensor.name} has ${data.length} values but shape ${formatShape(tensor.shape)} holds ${count}`);
  }
  const encoded = tensor.dtype === 'F32' ? data : tensor.dtype === 'F16' ? float32ToFloat16(data) : float32ToBfloat16(data);
  yield new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** Length prefix plus JSON padded with spaces to a multiple of 8, as the Rust library writes it. */
function headerBytes(header: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(8 + Math.ceil(json.length / 8) * 8, ' ');
  padded.writeBigUInt64LE(BigInt(padded.length - 8), 0);
  json.copy(padded, 8);
  return padded;
}

/** Readers never see a half-written file: write beside it, flush to disk, then rename over it. */
function writeFileAtomic(file: string, chunks: Iterable<Uint8Array>): void {
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(temporary, 'w');
    try {
      for (const chunk of chunks) writeFully(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw err;
  }
}

function writeFully(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
}

/**
 * Writes model-0000i-of-0000N.safetensors shards of at most maxShardBytes of data each (a larger
 * tensor gets a shard to itself) and model.safetensors.index.json, as transformers does.
 * Returns the shard paths.
 */
export function writeShardedSafetensors(dir: string, tensors: TensorToWrite[], maxShardBytes: number): string[] {
  const shards = groupIntoShards(tensors, maxShardBytes);
  const pad = (n: number) => String(n).padStart(5, '0');
  const names = shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    writeSafetensors(path.join(dir, names[i]), shard, { format: 'pt' });
    for (const tensor of shard) weightMap[tensor.name] = names[i];
  });
  const totalSize = tensors.reduce((sum, tensor) => sum + encodedByteLength(tensor), 0);
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  writeFileAtomic(path.join(dir, INDEX_FILE), [Buffer.from(JSON.stringify(index, null, 2) + '\n', 'utf8')]);
  return names.map((name) => path.join(dir, name));
}

function groupIntoShards(tensors: TensorToWrite[], maxShardBytes: number): TensorToWrite[][] {
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  for (const tensor of tensors) {
    const bytes = encodedByteLength(tensor);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(tensor);
    currentBytes += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

function encodedByteLength(tensor: TensorToWrite): number {
  return elementCount(tensor.shape) * DTYPE_BYTES[tensor.dtype];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
