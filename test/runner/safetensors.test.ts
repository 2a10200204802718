import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../native-runner/src/checkpoint/halfFloat';
import {
  openWeights,
  readSafetensorsHeader,
  readTensor,
  readTensorBytes,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorToWrite,
} from '../../native-runner/src/checkpoint/safetensors';
import { REFERENCE_DIR } from '../fixtures/paths';

const LLAMA = path.join(REFERENCE_DIR, 'llama', 'model.safetensors');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-safetensors-'));
}

/** Matches a CheckpointError `${file}: ...${problem}`, so every refusal is checked to name its file. */
function refusal(file: string, problem: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^CheckpointError: ${escape(file)}: .*${problem}`);
}

/** A file laid out by hand, for headers writeSafetensors would never produce. */
function writeRaw(file: string, header: unknown, data: Buffer, headerLength?: bigint): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([prefix, json, data]));
}

const f16 = (x: number) => float32ToFloat16(Float32Array.of(x))[0];
const bf16 = (x: number) => float32ToBfloat16(Float32Array.of(x))[0];

test('float32 to float16 rounds to nearest even, with subnormals, overflow, inf and NaN', () => {
  assert.equal(f16(1), 0x3c00);
  assert.equal(f16(-2), 0xc000);
  assert.equal(f16(0.1), 0x2e66);
  assert.equal(f16(65504), 0x7bff);
  assert.equal(f16(65519), 0x7bff);
  assert.equal(f16(65520), 0x7c00, 'halfway to 65536 rounds to even, which is infinity');
  assert.equal(f16(1e6), 0x7c00);
  assert.equal(f16(-Infinity), 0xfc00);
  assert.equal(f16(-0), 0x8000);
  assert.equal(f16(2 ** -14), 0x0400, 'smallest normal');
  assert.equal(f16(2 ** -24), 0x0001, 'smallest subnormal');
  assert.equal(f16(1e-7), 0x0002);
  assert.equal(f16(2 ** -25), 0x0000, 'halfway to the smallest subnormal rounds to even zero');
  assert.equal(f16(1.5 * 2 ** -24), 0x0002);
  assert.equal(f16(1 + 2 ** -11), 0x3c00, 'tie rounds down to even');
  assert.equal(f16(1 + 3 * 2 ** -11), 0x3c02, 'tie rounds up to even');
  const nan = f16(NaN);
  assert.ok((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, `NaN became 0x${nan.toString(16)}`);
});

test('float32 to bfloat16 rounds to nearest even and keeps NaN', () => {
  assert.equal(bf16(0.1), 0x3dcd);
  assert.equal(bf16(1), 0x3f80);
  assert.equal(bf16(-2), 0xc000);
  assert.equal(bf16(Infinity), 0x7f80);
  assert.equal(bf16(1 + 2 ** -8), 0x3f80, 'tie rounds down to even');
  assert.equal(bf16(1 + 3 * 2 ** -8), 0x3f82, 'tie rounds up to even');
  assert.equal(bf16(3.4028234663852886e38), 0x7f80, 'float32 max rounds to infinity');
  // A NaN whose payload sits only in the low 16 bits must not turn into infinity.
  const lowPayloadNaN = new Float32Array(new Uint32Array([0x7f800001]).buffer);
  assert.ok(Number.isNaN(bfloat16ToFloat32(float32ToBfloat16(lowPayloadNaN))[0]));
  assert.ok(Number.isNaN(bfloat16ToFloat32(Uint16Array.of(bf16(NaN)))[0]));
});

test('float16 and bfloat16 decode exactly', () => {
  const halves = float16ToFloat32(Uint16Array.of(0x3c00, 0x0001, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x2e66, 0x0400));
  assert.deepEqual([...halves], [1, 2 ** -24, 65504, Infinity, -Infinity, -0, 0.0999755859375, 2 ** -14]);
  assert.ok(Object.is(halves[5], -0));
  assert.ok(Number.isNaN(float16ToFloat32(Uint16Array.of(0x7e00))[0]));
  assert.deepEqual([...bfloat16ToFloat32(Uint16Array.of(0x3dcd, 0xc000, 0xff80))], [0.10009765625, -2, -Infinity]);
});

test('every float16 and bfloat16 bit pattern survives a trip through float32', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const [decode, encode, exponentMask, mantissaMask] of [
    [float16ToFloat32, float32ToFloat16, 0x7c00, 0x03ff],
    [bfloat16ToFloat32, float32ToBfloat16, 0x7f80, 0x007f],
  ] as const) {
    const back = encode(decode(all));
    for (let bits = 0; bits < 65536; bits++) {
      const isNaN = (bits & exponentMask) === exponentMask && (bits & mantissaMask) !== 0;
      if (isNaN) assert.ok((back[bits] & exponentMask) === exponentMask && (back[bits] & mantissaMask) !== 0);
      else assert.equal(back[bits], bits, `0x${bits.toString(16)} came back as 0x${back[bits].toString(16)}`);
    }
  }
});

test('F32, F16 and BF16 tensors round trip through a file', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  const values = Float32Array.of(1, -2, 0.1, 65504, 1e-7, Infinity, NaN, -0);
  writeSafetensors(
    file,
    [
      { name: 'f32', dtype: 'F32', shape: [2, 4], data: values },
      { name: 'f16', dtype: 'F16', shape: [8], data: values },
      { name: 'bf16', dtype: 'BF16', shape: [4, 2], data: values },
    ],
    { format: 'pt' },
  );

  const tensors = readSafetensorsHeader(file);
  assert.deepEqual([...tensors.keys()], ['f32', 'f16', 'bf16']);
  assert.deepEqual(tensors.get('bf16')!.shape, [4, 2]);
  assert.deepEqual([...readTensor(tensors.get('f32')!)], [...values]);
  assert.deepEqual([...readTensor(tensors.get('f16')!)], [1, -2, 0.0999755859375, 65504, 2 ** -23, Infinity, NaN, -0]);
  assert.deepEqual([...readTensor(tensors.get('bf16')!)], [...bfloat16ToFloat32(float32ToBfloat16(values))]);
  assert.equal(readTensor(tensors.get('bf16')!)[2], 0.10009765625);
  assert.deepEqual([...readTensorBytes(tensors.get('f16')!).subarray(4, 6)], [0x66, 0x2e]);

  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  assert.equal(headerLength % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
  assert.deepEqual(header.__metadata__, { format: 'pt' });
  assert.deepEqual(header.f16.data_offsets, [32, 48]);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['model.safetensors'], 'no temporary file is left behind');
});

test('a tensor at an odd offset reads correctly', () => {
  const file = path.join(tempDir(), 'odd.safetensors');
  const floats = Float32Array.of(1.5, -3.25, 7);
  const halves = float32ToFloat16(floats);
  const data = Buffer.concat([Buffer.of(9), Buffer.from(floats.buffer), Buffer.from(halves.buffer)]);
  writeRaw(
    file,
    {
      byte: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      f32: { dtype: 'F32', shape: [3], data_offsets: [1, 13] },
      f16: { dtype: 'F16', shape: [3], data_offsets: [13, 19] },
    },
    data,
  );
  const tensors = readSafetensorsHeader(file);
  assert.deepEqual([...readTensor(tensors.get('f32')!)], [1.5, -3.25, 7]);
  assert.deepEqual([...readTensor(tensors.get('f16')!)], [1.5, -3.25, 7]);
  assert.deepEqual([...readTensorBytes(tensors.get('byte')!)], [9]);
  assert.throws(() => readTensor(tensors.get('byte')!), refusal(file, 'tensor byte is U8'));
});

function someTensors(): TensorToWrite[] {
  const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
  return [
    { name: 'a.weight', dtype: 'F32', shape: [16, 8], data: ramp(128, 0.01) },
    { name: 'b.weight', dtype: 'F16', shape: [8, 8], data: ramp(64, 0.1) },
    { name: 'c.bias', dtype: 'F32', shape: [8], data: ramp(8, 1) },
    { name: 'd.weight', dtype: 'BF16', shape: [32, 4], data: ramp(128, 0.3) },
    { name: 'e.weight', dtype: 'F32', shape: [4, 4], data: ramp(16, 2) },
  ];
}

test('a sharded checkpoint reads the same as an unsharded one', () => {
  const singleDir = tempDir();
  const shardedDir = tempDir();
  writeSafetensors(path.join(singleDir, 'model.safetensors'), someTensors());
  const shards = writeShardedSafetensors(shardedDir, someTensors(), 400);
  assert.equal(shards.length, 3);
  assert.equal(path.basename(shards[0]), 'model-00001-of-00003.safetensors');
  const index = JSON.parse(fs.readFileSync(path.join(shardedDir, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, 512 + 128 + 32 + 256 + 64);
  assert.equal(index.weight_map['d.weight'], 'model-00003-of-00003.safetensors');

  const single = openWeights(singleDir);
  const sharded = openWeights(shardedDir);
  assert.deepEqual(sharded.files, shards);
  assert.equal(sharded.source, path.join(shardedDir, 'model.safetensors.index.json'));
  assert.deepEqual([...sharded.tensors.keys()].sort(), [...single.tensors.keys()].sort());
  for (const [name, info] of single.tensors) {
    const shardedInfo = sharded.tensors.get(name)!;
    assert.deepEqual(shardedInfo.shape, info.shape);
    assert.equal(shardedInfo.dtype, info.dtype);
    assert.deepEqual(readTensor(shardedInfo), readTensor(info), name);
  }
});

test('a file shorter than 8 bytes is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  fs.writeFileSync(file, Buffer.of(1, 2, 3));
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'is 3 bytes, shorter than the 8-byte header length'));
});

test('a header length beyond the end of the file is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  writeRaw(file, {}, Buffer.alloc(0), 1000n);
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'header length 1000 reaches beyond the end of the file \\(10 bytes\\)'));
});

test('a header that is not JSON is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(5n);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from('{"a":')]));
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'header is not valid JSON'));
});

test('an unknown dtype is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  writeRaw(file, { x: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2));
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'tensor x has dtype "F8_E4M3", expected one of F32, F16, BF16'));
});

test('a shape that does not match the data offsets is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  writeRaw(file, { x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, Buffer.alloc(20));
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'tensor x: shape \\[2, 3\\] of F32 needs 24 bytes but data_offsets span 20'));
});

test('a truncated file is refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  writeSafetensors(file, someTensors());
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - 10);
  assert.throws(
    () => readSafetensorsHeader(file),
    refusal(file, `truncated: tensor e.weight needs bytes up to ${size} but the file has ${size - 10}`),
  );
});

test('overlapping tensors are refused', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  writeRaw(
    file,
    {
      x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    },
    Buffer.alloc(12),
  );
  assert.throws(() => readSafetensorsHeader(file), refusal(file, 'tensors x and y overlap'));
});

test('a pickle-only folder is refused without reading the pickle', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not really a pickle');
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  assert.throws(
    () => openWeights(dir),
    refusal(
      dir,
      'only pickle weights \\(pytorch_model.bin\\), and pickle weights are never unpickled.*Convert the checkpoint to safetensors.*safe_serialization=True',
    ),
  );
});

test('a folder without weights is refused', () => {
  const dir = tempDir();
  assert.throws(() => openWeights(dir), refusal(dir, 'no model.safetensors or model.safetensors.index.json found'));
});

test('a sharded index with a missing shard is refused', () => {
  const dir = tempDir();
  const shards = writeShardedSafetensors(dir, someTensors(), 400);
  fs.rmSync(shards[1]);
  const index = path.join(dir, 'model.safetensors.index.json');
  assert.throws(() => openWeights(dir), refusal(index, 'weight_map lists shard model-00002-of-00003.safetensors, which is missing'));
});

test('a weight_map that puts a tensor in the wrong shard is refused', () => {
  const dir = tempDir();
  writeShardedSafetensors(dir, someTensors(), 400);
  const index = path.join(dir, 'model.safetensors.index.json');
  const json = JSON.parse(fs.readFileSync(index, 'utf8'));
  json.weight_map['a.weight'] = 'model-00002-of-00003.safetensors';
  fs.writeFileSync(index, JSON.stringify(json));
  assert.throws(
    () => openWeights(dir),
    refusal(index, 'weight_map puts tensor a.weight in model-00002-of-00003.safetensors, but that shard has no such tensor'),
  );
});

test('a tensor stored in two shards is refused', () => {
  const dir = tempDir();
  const [first, second] = someTensors();
  writeShardedSafetensors(dir, [first, second], 1);
  writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [second, first]);
  const index = path.join(dir, 'model.safetensors.index.json');
  assert.throws(
    () => openWeights(dir),
    refusal(index, 'tensor a.weight is stored twice, in model-00001-of-00002.safetensors and in model-00002-of-00002.safetensors'),
  );
});

test('readTensor reads the reference llama embedding as a naive whole-file parse does', () => {
  const info = readSafetensorsHeader(LLAMA).get('model.embed_tokens.weight')!;
  const whole = fs.readFileSync(LLAMA);
  const headerLength = Number(whole.readBigUInt64LE(0));
  const entry = JSON.parse(whole.subarray(8, 8 + headerLength).toString())['model.embed_tokens.weight'];
  const [begin, end] = entry.data_offsets as [number, number];
  const bytes = whole.subarray(8 + headerLength + begin, 8 + headerLength + end);
  const naive = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  assert.deepEqual(info.shape, [420, 64]);
  assert.deepEqual(readTensor(info), naive);
});
