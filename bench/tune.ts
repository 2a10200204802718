import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomCheckpoint } from '../native-runner/src/checkpoint/randomCheckpoint';
import { Model } from '../native-runner/src/runtime/model';
import { cudaProviderInstalled, type DeviceRequest } from '../native-runner/src/runtime/session';
import type { Example } from '../native-runner/src/training/lossBatch';
import type { TuneMode } from '../native-runner/src/training/parameters';
import { Trainer } from '../native-runner/src/training/trainer';
import { REFERENCE_DIR } from '../test/fixtures/paths';

/**
 * Training step time and peak memory, head tuning (4% of heads, q rows + o columns) against full fine-tuning,
 * each in a process of its own so that peak memory belongs to one configuration. On CUDA (when its provider
 * is installed) also a Qwen2.5-0.5B-shaped model at batch 8 x 256, the shape of the PyTorch baseline in
 * ../shared/gpu/README.md (58.8 ms, 6.4 GB, bf16; these graphs train in float32).
 * Usage: npm run bench:tune [-- --quick]
 */

const SMALL = {
  model_type: 'qwen2', hidden_size: 256, intermediate_size: 768, num_hidden_layers: 6, num_attention_heads: 8,
  num_key_value_heads: 2, vocab_size: 8192, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
};
const QWEN_05B = { ...SMALL, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, vocab_size: 151936 };

interface Run { model: string; mode: TuneMode; device: DeviceRequest; batch: number; tokens: number; steps: number }

/** In the child: time `steps` optimizer steps after one warm-up step, report JSON on stdout. */
async function child(run: Run): Promise<void> {
  const model = Model.load(run.model, { device: run.device });
  const { numLayers, numHeads } = model.config;
  const count = Math.max(1, Math.round(0.04 * numLayers * numHeads));
  const heads = Array.from({ length: count }, (_, i) => ({ layer: (i * 7) % numLayers, head: (i * 5) % numHeads }));
  const trainer = new Trainer(model, {
    spec: { mode: run.mode, heads, includeKeyValue: false },
    adamw: { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    schedule: { kind: 'constant', warmupSteps: 0, totalSteps: run.steps + 1 },
    maxGradNorm: 1, tokenQuantum: 1, rowQuantum: 1,
  });
  const examples: Example[] = Array.from({ length: run.batch }, (_, b) => {
    const ids = Array.from({ length: run.tokens }, (_, t) => (b * 131 + t * 7919) % model.config.vocabSize);
    return { ids, labels: ids.map((id, t) => (t >= run.tokens - 32 ? id : -100)) };
  });
  await trainer.train([examples]);
  const start = process.hrtime.bigint();
  for (let i = 0; i < run.steps; i++) await trainer.train([examples]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / run.steps;
  const trainable = trainer.slices.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  process.stdout.write(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024, provider: trainer.placement?.provider, trainable, heads: run.mode === 'heads' ? count : undefined }));
  await model.dispose();
}

function measure(run: Run): string {
  const result = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', JSON.stringify(run)], { encoding: 'utf8', env: process.env });
  if (result.status !== 0) return `${run.mode}: failed\n${result.stderr}`;
  const r = JSON.parse(result.stdout) as { ms: number; maxRssMb: number; provider: string; trainable: number; heads?: number };
  const what = run.mode === 'heads' ? `heads (${r.heads} of them)` : run.mode;
  return `${path.basename(run.model).padEnd(9)} ${r.provider.padEnd(4)} ${what.padEnd(16)} ${`${run.batch}x${run.tokens}`.padEnd(7)} ${r.ms.toFixed(1).padStart(9)} ms/step  peak RSS ${r.maxRssMb.toFixed(0).padStart(6)} MB  trainable ${r.trainable.toLocaleString('en')}`;
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-bench-tune-'));
  process.env.PINPOINT_CACHE ??= path.join(work, 'cache');
  try {
    const small = path.join(work, 'small-7M');
    writeRandomCheckpoint(small, SMALL, { seed: 1, tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
    console.log(`training step, ${os.cpus()[0].model}, ${os.cpus().length} cores; float32; AdamW on host`);
    const steps = quick ? 2 : 5;
    for (const mode of ['heads', 'full'] as const) console.log(measure({ model: small, mode, device: 'cpu', batch: 4, tokens: 128, steps }));
    if (!cudaProviderInstalled()) return console.log('cuda: the CUDA execution provider is not installed beside onnxruntime-node; CPU figures only');
    const big = path.join(work, 'qwen0.5B');
    writeRandomCheckpoint(big, QWEN_05B, { seed: 1, tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
    for (const mode of ['heads', 'full'] as const) console.log(measure({ model: big, mode, device: 'cuda', batch: 8, tokens: 256, steps }));
    console.log('PyTorch baseline (../shared/gpu/README.md, H200): heads step 58.8 ms, 6.4 GB, bf16');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) void child(JSON.parse(process.argv[childAt + 1]) as Run);
else main();
