import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathPatching } from '../native-runner/src/localisation/pathPatching';
import { forward } from '../native-runner/src/runtime/forward';
import { greedyGenerate } from '../native-runner/src/runtime/generate';
import { Model } from '../native-runner/src/runtime/model';
import { cudaProviderInstalled } from '../native-runner/src/runtime/session';
import { Trainer } from '../native-runner/src/training/trainer';
import { benchModel, shapeName, SHAPES, type ShapeName } from './benchModels';
import { DeviceMemorySampler } from './deviceMemory';
import { RUNNER_ENV, type Device, type Dtype } from '../src/protocol/protocol';
import { oneOf } from '../native-runner/src/cliOptions';

/**
 * Pinpoint against PyTorch on the same machine, in the same run, with the same checkpoint and the same token ids:
 * forward passes, greedy generation, the path-patching sweep of every head (against TransformerLens' way, one hooked
 * forward per head), a head-tuning step and a full fine-tuning step. Each task runs in a process of its own on each
 * side, so that its peak RSS is its own; every comparison checks that both computed the same numbers.
 *
 * The peer is bench/peer/torch_peer.py. On the CPU it is a plain PyTorch decoder on Debian's python3-torch (1.13),
 * float32; its default BLAS is the reference one, and with libopenblas0-openmp installed OPENBLAS_CORETYPE=SkylakeX
 * is set in the peer's process only (OpenBLAS 0.3.21 takes this machine's CPU for an older one). On CUDA (--device
 * cuda, the GPU machine) it is transformers' AutoModelForCausalLM, and each task runs in the dtype of CUDA_DTYPES on
 * both sides; memory is then the peak device memory of each side's process, sampled from nvidia-smi.
 * Usage: npm run bench [-- --shape 30m,0.5b] [--only forward,generate,patching,heads,full] [--quick] [--device cpu|cuda]
 * The last line of stdout is one JSON object of every task's figures.
 */

const PEER = path.join(__dirname, 'peer', 'torch_peer.py');
const PYTHON = process.env.PINPOINT_TORCH_PYTHON ?? '/usr/bin/python3';
const TASKS = ['forward', 'generate', 'patching', 'heads', 'full'] as const;
type Task = (typeof TASKS)[number];

type Sizes = Record<Task, { batch: number; tokens: number; extra?: number }>;

/**
 * Sizes per device and shape. On the CPU, chosen so that every task takes seconds, not minutes, on the 2-core machine
 * (`extra`: new tokens; for patching, the peer's sample of heads; for heads, how many are tuned). On CUDA, the sizes of the figures measured there
 * before (`../shared/gpu` of the project's workplace): forward 8 x 256, every head patched, 16 heads tuned on 8 x 256.
 */
const SIZES: Record<'cpu' | 'cuda', Partial<Record<ShapeName, Sizes>>> = {
  cpu: {
    '30m': {
      forward: { batch: 8, tokens: 256 },
      generate: { batch: 4, tokens: 64, extra: 64 },
      patching: { batch: 2, tokens: 160 },
      heads: { batch: 8, tokens: 128 },
      full: { batch: 8, tokens: 128 },
    },
    '0.5b': {
      forward: { batch: 4, tokens: 128 },
      generate: { batch: 4, tokens: 64, extra: 32 },
      patching: { batch: 2, tokens: 128, extra: 24 },
      heads: { batch: 4, tokens: 128 },
      full: { batch: 4, tokens: 128 },
    },
  },
  cuda: {
    '0.5b': {
      forward: { batch: 8, tokens: 256 },
      generate: { batch: 8, tokens: 128, extra: 64 },
      patching: { batch: 1, tokens: 128 },
      heads: { batch: 8, tokens: 256, extra: 16 },
      full: { batch: 8, tokens: 256 },
    },
  },
};

/** The dtype of each task on CUDA, on both sides: half precision, as models are run and tuned on a GPU. */
const CUDA_DTYPES: Record<Task, Dtype> = { forward: 'float16', generate: 'float16', patching: 'bfloat16', heads: 'bfloat16', full: 'bfloat16' };

const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const MAX_GRAD_NORM = 1;

interface Spec {
  task: Task;
  model: string;
  device: Device;
  dtype: Dtype;
  peer: 'decoder' | 'transformers';
  runs: number;
  prompts?: number[][];
  maxNewTokens?: number;
  reference?: number[];
  counterfactual?: number[];
  targets?: number[];
  heads?: [number, number][];
  ids?: number[][];
  labels?: number[][];
  steps?: number;
  adamw?: typeof ADAMW;
  maxGradNorm?: number;
  compare?: string[];
}

interface Measured {
  /** peak device memory of the process, on CUDA */
  peakDeviceBytes?: number;
  seconds?: number;
  secondsPerHead?: number;
  firstSeconds?: number;
  peakRssBytes: number;
  tokens?: number[][];
  reference?: number[];
  losses?: number[];
  heads?: number;
  provider?: string;
}

/** Token ids that every vocabulary here holds, the same on both sides. */
function ids(count: number, seed: number, vocab: number): number[] {
  return Array.from({ length: count }, (_, i) => (seed * 7919 + i * 104729 + ((i * i) % 97)) % vocab);
}

function specFor(task: Task, shape: ShapeName, model: string, quick: boolean, device: 'cpu' | 'cuda'): Spec {
  const config = SHAPES[shape];
  const size = SIZES[device][shape]?.[task];
  if (!size) throw new Error(`no ${device} sizes for the ${shape} shape (known: ${Object.keys(SIZES[device]).join(', ')})`);
  const vocab = config.vocab_size;
  const base: Spec =
    device === 'cuda'
      ? { task, model, device, dtype: CUDA_DTYPES[task], peer: 'transformers', runs: quick ? 3 : 10 }
      : { task, model, device, dtype: 'float32', peer: 'decoder', runs: quick ? 2 : 5 };
  const prompts = Array.from({ length: size.batch }, (_, b) => ids(size.tokens - 3 * b, b + 1, vocab));
  switch (task) {
    case 'forward':
      return { ...base, prompts };
    case 'generate':
      return { ...base, runs: quick ? 1 : 3, prompts, maxNewTokens: size.extra };
    case 'patching': {
      const reference = ids(size.tokens, 11, vocab);
      const counterfactual = [...reference.slice(0, -6), ...ids(6, 12, vocab)];
      const every = Array.from({ length: config.num_hidden_layers * config.num_attention_heads }, (_, i): [number, number] => [
        Math.floor(i / config.num_attention_heads),
        i % config.num_attention_heads,
      ]);
      // the peer's per-head forward is the same work for every head: a spread sample of them is timed and checked
      const heads = size.extra ? every.filter((_, i) => i % Math.ceil(every.length / size.extra!) === 0) : every;
      return { ...base, reference, counterfactual, targets: [ids(1, 13, vocab)[0], ids(1, 14, vocab)[0]], heads };
    }
    case 'heads':
    case 'full': {
      const tokens = Array.from({ length: size.batch }, (_, b) => ids(size.tokens, 20 + b, vocab));
      const labels = tokens.map((row) => row.map((id, t) => (t >= size.tokens - 32 ? id : -100)));
      const count = size.extra ?? Math.max(1, Math.round(0.04 * config.num_hidden_layers * config.num_attention_heads));
      const heads = Array.from({ length: count }, (_, i): [number, number] => [
        (i * 7) % config.num_hidden_layers,
        (i * 5) % config.num_attention_heads,
      ]);
      const compare =
        task === 'heads'
          ? [...new Set(heads.map(([l]) => l))]
              .slice(0, 2)
              .flatMap((l) => [`model.layers.${l}.self_attn.q_proj.weight`, `model.layers.${l}.self_attn.o_proj.weight`])
          : ['model.layers.0.self_attn.q_proj.weight', `model.layers.${config.num_hidden_layers - 1}.mlp.down_proj.weight`, 'model.norm.weight'];
      return { ...base, ids: tokens, labels, steps: quick ? 1 : 3, adamw: ADAMW, maxGradNorm: MAX_GRAD_NORM, heads, compare };
    }
  }
}

// ---- Pinpoint's side, in a child process ----

async function ours(spec: Spec, out: string): Promise<Measured> {
  const model = Model.load(spec.model, { device: spec.device, dtype: spec.dtype });
  // the fastest of the runs after a warm-up, as the peer times its own: the least disturbed by the rest of the machine
  const fastest = async (fn: () => Promise<void>) => {
    await fn();
    const times: number[] = [];
    for (let i = 0; i < spec.runs; i++) {
      const start = performance.now();
      await fn();
      times.push((performance.now() - start) / 1000);
    }
    return Math.min(...times);
  };
  const save = (name: string, values: Float32Array) =>
    fs.writeFileSync(path.join(out, name), new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  try {
    switch (spec.task) {
      case 'forward': {
        const prompts = spec.prompts!;
        const request = { prompts, reads: prompts.map((p, row) => ({ row, position: p.length - 1, ids: [] })), fetchLogits: true };
        let logits: Float32Array = new Float32Array();
        const seconds = await fastest(async () => {
          logits = (await forward(model, request)).logits!;
        });
        save('logits.f32', logits);
        return { seconds, peakRssBytes: peak(), provider: (await model.placement()).provider };
      }
      case 'generate': {
        let tokens: number[][] = [];
        const seconds = await fastest(async () => {
          tokens = await greedyGenerate(model, spec.prompts!, { maxNewTokens: spec.maxNewTokens!, stopAtEos: false });
        });
        return { seconds, tokens, peakRssBytes: peak(), provider: (await model.placement()).provider };
      }
      case 'patching': {
        const pair = { id: 'bench', text: '', reference: spec.reference!, counterfactual: spec.counterfactual! };
        let result = await pathPatching(model, pair, spec.targets!);
        const seconds = await fastest(async () => {
          result = await pathPatching(model, pair, spec.targets!);
        });
        save('patched.f32', result.patched);
        return { seconds, reference: [...result.reference], peakRssBytes: peak(), provider: (await model.placement()).provider };
      }
      case 'heads':
      case 'full': {
        const trainer = new Trainer(model, {
          spec: { mode: spec.task, heads: spec.heads!.map(([layer, head]) => ({ layer, head })), includeKeyValue: false },
          adamw: spec.adamw!,
          schedule: { kind: 'constant', warmupSteps: 0, totalSteps: spec.steps! + 1 },
          maxGradNorm: spec.maxGradNorm!,
          tokenQuantum: 1,
          rowQuantum: 1,
        });
        const examples = spec.ids!.map((row, b) => ({ ids: row, labels: spec.labels![b] }));
        const losses: number[] = [];
        let start = performance.now();
        losses.push((await trainer.train([examples])).loss);
        const firstSeconds = (performance.now() - start) / 1000;
        const times: number[] = [];
        for (let i = 0; i < spec.steps!; i++) {
          start = performance.now();
          losses.push((await trainer.train([examples])).loss);
          times.push((performance.now() - start) / 1000);
        }
        spec.compare!.forEach((name, i) => save(`param${i}.f32`, trainer.tunedTensor(name)));
        return { seconds: Math.min(...times), firstSeconds, losses, peakRssBytes: peak(), provider: trainer.placement?.provider };
      }
    }
  } finally {
    await model.dispose();
  }
}

function peak(): number {
  return process.resourceUsage().maxRSS * 1024;
}

// ---- the orchestrator ----

/** A side's process to its end, its last stdout line as what it measured; on CUDA, its peak device memory too. */
async function run(side: 'pinpoint' | 'torch', command: string, args: string[], env: NodeJS.ProcessEnv, device: 'cpu' | 'cuda'): Promise<Measured> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const sampler = device === 'cuda' ? new DeviceMemorySampler(child.pid!) : undefined;
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const peakDevice = sampler?.stop() ?? 0;
  if (status !== 0) throw new Error(`the ${side} side exited with ${status}:\n${stderr}`);
  const measured = JSON.parse(stdout.trim().split('\n').pop()!) as Measured;
  return device === 'cuda' ? { ...measured, peakDeviceBytes: peakDevice } : measured;
}

function readF32(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return Number.isNaN(d) ? Infinity : d;
}

interface Row {
  shape: ShapeName;
  task: string;
  dtype: Dtype;
  ours: number;
  torch: number;
  speedup: number;
  /** peak RSS on the CPU, peak device memory on CUDA */
  oursMemoryGB: number;
  torchMemoryGB: number;
  difference: number;
  equal: boolean;
  firstOverLater?: number;
  provider?: string;
}

/**
 * How far two implementations' values may be apart: float32 arithmetic in another order, or half precision's
 * rounding through every layer (bfloat16 keeps 8 bits of mantissa, float16 11).
 */
const TOLERANCE: Record<Dtype, { values: number; loss: number; paramSteps: number }> = {
  float32: { values: 1e-3, loss: 1e-4, paramSteps: 0.05 },
  float16: { values: 3e-2, loss: 1e-2, paramSteps: 0.5 },
  bfloat16: { values: 2.5e-1, loss: 5e-2, paramSteps: 0.5 },
};

/** What both sides computed, compared: the largest difference and whether it is within the task's tolerance. */
function compare(
  task: Task,
  spec: Spec,
  shape: ShapeName,
  a: Measured,
  b: Measured,
  oursDir: string,
  torchDir: string,
): { difference: number; equal: boolean } {
  const tolerance = TOLERANCE[spec.dtype];
  switch (task) {
    case 'forward': {
      const d = maxAbsDiff(readF32(path.join(oursDir, 'logits.f32')), readF32(path.join(torchDir, 'logits.f32')));
      return { difference: d, equal: d <= tolerance.values };
    }
    case 'generate': {
      // greedy decoding follows the argmax: in half precision a near tie may go either way and the rows part there,
      // so there only the first token of each row must agree; the difference is the share of tokens after the parting
      const agreed = a.tokens!.map((row, r) => {
        const parting = row.findIndex((t, i) => t !== b.tokens![r]?.[i]);
        return parting < 0 ? row.length : parting;
      });
      const total = a.tokens!.reduce((n, row) => n + row.length, 0);
      const difference = 1 - agreed.reduce((n, k) => n + k, 0) / total;
      return { difference, equal: spec.dtype === 'float32' ? difference === 0 : agreed.every((k) => k >= 1) };
    }
    case 'patching': {
      const K = spec.targets!.length;
      const all = readF32(path.join(oursDir, 'patched.f32'));
      const H = SHAPES[shape].num_attention_heads;
      const sample = Float32Array.from(spec.heads!.flatMap(([l, h]) => Array.from(all.subarray((l * H + h) * K, (l * H + h + 1) * K))));
      const d = Math.max(maxAbsDiff(sample, readF32(path.join(torchDir, 'patched.f32'))), maxAbsDiff(a.reference!, b.reference!));
      return { difference: d, equal: d <= tolerance.values };
    }
    case 'heads':
    case 'full': {
      const lossDiff = maxAbsDiff(a.losses!, b.losses!);
      const paramDiff = Math.max(
        ...spec.compare!.map((_, i) => maxAbsDiff(readF32(path.join(oursDir, `param${i}.f32`)), readF32(path.join(torchDir, `param${i}.f32`)))),
      );
      // Adam divides each gradient element by its own magnitude, so parameters are held to a share of what the
      // steps could move them at most (steps x lr)
      const steps = a.losses!.length;
      return { difference: Math.max(lossDiff, paramDiff), equal: lossDiff <= tolerance.loss && paramDiff <= tolerance.paramSteps * steps * ADAMW.lr };
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shape: { type: 'string', default: '30m,0.5b' },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      device: { type: 'string', default: 'auto' },
    },
  });
  const device =
    values.device === 'auto' ? (cudaProviderInstalled() ? 'cuda' : 'cpu') : oneOf<'cpu' | 'cuda'>(values.device, ['cpu', 'cuda'], '--device');
  const tasks = (values.only?.split(',') ?? TASKS).map((t) => oneOf<Task>(t, TASKS, '--only'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-vs-torch-'));
  const env = { ...process.env, ...RUNNER_ENV, PINPOINT_CACHE: process.env.PINPOINT_CACHE ?? path.join(os.tmpdir(), 'pinpoint-bench-cache') };
  const rows: Row[] = [];
  const peer = device === 'cuda' ? 'PyTorch + transformers' : 'PyTorch';
  console.log(`Pinpoint (onnxruntime-node, ${device}) against ${peer} (${PYTHON}, ${device}), ${os.cpus()[0].model}, ${os.cpus().length} cores`);
  console.log(
    `shape task              pinpoint      torch   speedup  pinpoint ${device === 'cuda' ? 'device' : 'RSS'}  torch  equal (largest difference)`,
  );
  try {
    for (const shape of values.shape!.split(',').map((s) => shapeName(s, '30m'))) {
      const model = benchModel(shape);
      for (const task of tasks) {
        try {
          const row = await measure(task, shape, model, values.quick!, device, work, env);
          rows.push(row);
          console.log(
            `${shape.padEnd(5)} ${row.task.padEnd(17)} ${time(row.ours)} ${time(row.torch)} ${row.speedup.toFixed(2).padStart(7)}x ${row.oursMemoryGB.toFixed(2).padStart(9)} GB ${row.torchMemoryGB.toFixed(2).padStart(7)} GB  ${row.equal ? 'yes' : 'NO '} (${row.difference.toExponential(1)})${row.dtype === 'float32' ? '' : `  ${row.dtype}`}${row.firstOverLater ? `  first step ${row.firstOverLater.toFixed(2)}x a later one` : ''}`,
          );
        } catch (err) {
          // one failing task (a kernel missing on a device, say) must not hide the others' figures
          console.log(`${shape.padEnd(5)} ${task.padEnd(17)} FAILED: ${(err as Error).message.split('\n').slice(0, 12).join('\n      ')}`);
          process.exitCode = 1;
        }
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(
    JSON.stringify(
      rows.map((r) => ({
        ...r,
        ours: +r.ours.toFixed(4),
        torch: +r.torch.toFixed(4),
        speedup: +r.speedup.toFixed(3),
        oursMemoryGB: +r.oursMemoryGB.toFixed(3),
        torchMemoryGB: +r.torchMemoryGB.toFixed(3),
      })),
    ),
  );
  if (rows.some((r) => !r.equal)) process.exitCode = 1;
}

/** One task on both sides, each in a process of its own, and the comparison of what they computed. */
async function measure(
  task: Task,
  shape: ShapeName,
  model: string,
  quick: boolean,
  device: 'cpu' | 'cuda',
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<Row> {
  const spec = specFor(task, shape, model, quick, device);
  const dir = (side: string) => fs.mkdirSync(path.join(work, `${shape}-${task}-${side}`), { recursive: true })!;
  const oursDir = dir('ours');
  const torchDir = dir('torch');
  const specFile = path.join(work, `${shape}-${task}.json`);
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const a = await run(
    'pinpoint',
    process.execPath,
    [...process.execArgv, process.argv[1], '--child', JSON.stringify({ specFile, out: oursDir })],
    env,
    device,
  );
  const b = await run('torch', PYTHON, [PEER, task, specFile, torchDir], { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' }, device);
  const check = compare(task, spec, shape, a, b, oursDir, torchDir);
  const torchSeconds = task === 'patching' ? b.secondsPerHead! * b.heads! : b.seconds!;
  const memory = (m: Measured) => (device === 'cuda' ? m.peakDeviceBytes! : m.peakRssBytes) / 2 ** 30;
  return {
    shape,
    task: label(task, spec),
    dtype: spec.dtype,
    ours: a.seconds!,
    torch: torchSeconds,
    speedup: torchSeconds / a.seconds!,
    oursMemoryGB: memory(a),
    torchMemoryGB: memory(b),
    ...check,
    provider: a.provider,
    firstOverLater: a.firstSeconds ? a.firstSeconds / a.seconds! : undefined,
  };
}

function label(task: Task, spec: Spec): string {
  const b = spec.prompts?.length ?? spec.ids?.length ?? 2;
  const t = spec.prompts?.[0].length ?? spec.ids?.[0].length ?? spec.reference?.length;
  if (task === 'generate') return `generate ${b}x${spec.maxNewTokens}`;
  if (task === 'patching') return `patching ${t} tok`;
  return `${task} ${b}x${t}`;
}

function time(seconds: number): string {
  return seconds >= 1 ? `${seconds.toFixed(2).padStart(7)} s ` : `${(seconds * 1000).toFixed(1).padStart(7)} ms`;
}

const childArg = process.argv.indexOf('--child');
if (childArg >= 0) {
  const { specFile, out } = JSON.parse(process.argv[childArg + 1]) as { specFile: string; out: string };
  ours(JSON.parse(fs.readFileSync(specFile, 'utf8')) as Spec, out).then(
    (m) => process.stdout.write(`${JSON.stringify(m)}\n`),
    (err: Error) => {
      console.error(err.stack);
      process.exitCode = 1;
    },
  );
} else {
  main().catch((err: Error) => {
    console.error(err.stack);
    process.exitCode = 1;
  });
}
