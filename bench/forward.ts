import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomCheckpoint } from '../native-runner/src/checkpoint/randomCheckpoint';
import type { GraphDtype } from '../native-runner/src/model/weightFile';
import { forward } from '../native-runner/src/runtime/forward';
import { Model } from '../native-runner/src/runtime/model';
import { cudaProviderInstalled, type DeviceRequest } from '../native-runner/src/runtime/session';
import { REFERENCE_DIR, referenceCases } from '../test/fixtures/paths';

/**
 * Forward-pass throughput: tokens/s for prompt batches (last-position logits, as evaluation and patching use),
 * on the reference checkpoints and on a random mid-size model, on CPU and, when the CUDA provider is installed,
 * on CUDA in float32 and float16 (with a Qwen2.5-0.5B-shaped model there, the shape of the peer baseline).
 * Usage: npm run bench:forward [-- --quick]
 */

const quick = process.argv.includes('--quick');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-bench-'));
process.env.PINPOINT_CACHE ??= path.join(work, 'cache');

interface Shape { batch: number; tokens: number }

function randomModel(name: string, config: Record<string, unknown>): string {
  const dir = path.join(work, name);
  writeRandomCheckpoint(dir, config, { seed: 1, tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
  return dir;
}

const MID = {
  model_type: 'qwen2', hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8,
  num_key_value_heads: 2, vocab_size: 8192, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
};
const QWEN_05B = {
  ...MID, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, vocab_size: 151936,
};

async function measure(dir: string, device: DeviceRequest, dtype: GraphDtype, shape: Shape): Promise<string> {
  const model = Model.load(dir, { device, dtype });
  try {
    const placement = await model.placement();
    const prompt = Array.from({ length: shape.tokens }, (_, i) => (i * 7919) % model.config.vocabSize);
    const prompts = Array.from({ length: shape.batch }, () => prompt);
    const request = { prompts, reads: prompts.map((p, row) => ({ row, position: p.length - 1, ids: [] })), fetchLogits: true };
    for (let i = 0; i < 3; i++) await forward(model, request);
    const runs = quick ? 5 : 20;
    const start = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await forward(model, request);
    const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;
    const tokensPerSecond = (shape.batch * shape.tokens) / (ms / 1000);
    return `${path.basename(dir).padEnd(10)} ${placement.provider.padEnd(4)} ${dtype.padEnd(7)} ${`${shape.batch}x${shape.tokens}`.padEnd(7)} ${ms.toFixed(2).padStart(9)} ms ${Math.round(tokensPerSecond).toString().padStart(9)} tokens/s`;
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const shapes: Shape[] = [{ batch: 1, tokens: 84 }, { batch: 8, tokens: 84 }];
  const mid = randomModel('mid-30M', MID);
  console.log(`onnxruntime-node forward, ${os.cpus()[0].model}, ${os.cpus().length} cores`);
  console.log('model      dev  dtype   shape      time/run     throughput');
  for (const dir of referenceCases()) for (const shape of shapes) console.log(await measure(dir, 'cpu', 'float32', shape));
  console.log(await measure(mid, 'cpu', 'float32', { batch: 8, tokens: 256 }));
  if (!cudaProviderInstalled()) {
    console.log('cuda: the CUDA execution provider is not installed beside onnxruntime-node; CPU figures only');
    return;
  }
  const big = randomModel('qwen0.5B', QWEN_05B);
  for (const dtype of ['float32', 'float16'] as const) {
    console.log(await measure(mid, 'cuda', dtype, { batch: 8, tokens: 256 }));
    console.log(await measure(big, 'cuda', dtype, { batch: 8, tokens: 256 }));
  }
}

main().finally(() => fs.rmSync(work, { recursive: true, force: true }));
