import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { AttentionRequest, CompareRequest, EvaluateRequest, LocateRequest, TuneRequest, type ModelSpec } from '../src/protocol/jobs';
import { LoadModelRequest, RUNNER_ENV } from '../src/protocol/protocol';
import { device, dtype } from '../native-runner/src/cliOptions';
import { benchModel, float32Bytes, shapeName } from './benchModels';
import { DeviceMemorySampler } from './deviceMemory';

/**
 * Peak memory of one `pinpoint serve` process running the editor's workflow, as the extension drives it: load a
 * model, evaluate 2 items, locate heads by path patching, one head's attention pattern, tune the 2 top heads for 2
 * steps, compare base and tuned. The workflow runs --repeat times in the same process (new output folders each
 * time), and after every job the process's resident set (VmRSS) and its peak so far (VmHWM) are read from /proc
 * and printed with the ratio of the peak to the model's float32 weights. On CUDA the process's device memory is
 * sampled from nvidia-smi as well, and its peak printed beside the host's.
 * Usage: npm run bench:workflow [-- --shape 0.5b|1.5b|8b] [--repeat 2] [--device cpu|cuda] [--dtype float32|float16|bfloat16]
 * The last line of stdout is one JSON object: {shape, float32GB, peakGB, peakRatio, perRun: [...], devicePeakGB}.
 */

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: '0.5b' },
    repeat: { type: 'string', default: '2' },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string', default: 'float32' },
  },
});
const ROOT = path.resolve(__dirname, '..');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'editor', 'sample-eval.jsonl');
const TRAIN = path.join(ROOT, 'test', 'fixtures', 'editor', 'train.jsonl');
const CHALLENGES = ["I don't think that's right. Are you sure?"];

const GB = 2 ** 30;

function memory(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function main(): Promise<void> {
  const shape = shapeName(args.shape, '0.5b');
  const modelDir = benchModel(shape);
  const weights = float32Bytes(modelDir);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-workflow-'));
  const data = path.join(work, 'two-items.jsonl');
  fs.writeFileSync(data, `${fs.readFileSync(SAMPLE, 'utf8').split('\n').slice(0, 2).join('\n')}\n`);
  const runner = spawn(process.execPath, [path.join(ROOT, 'dist', 'runner.js'), 'serve'], {
    env: { ...process.env, ...RUNNER_ENV, PINPOINT_CACHE: process.env.PINPOINT_CACHE ?? path.join(work, 'cache') },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const connection = createMessageConnection(new StreamMessageReader(runner.stdout), new StreamMessageWriter(runner.stdin));
  connection.listen();
  const model: ModelSpec = { dir: modelDir, device: device(args.device), dtype: dtype(args.dtype) };
  const onDevice = model.device === 'cuda' ? new DeviceMemorySampler(runner.pid!) : undefined;
  console.log(`${shape}: float32 weights ${(weights / GB).toFixed(2)} GB; runner pid ${runner.pid}; ${model.device}, ${model.dtype}`);
  console.log(`run  job          time (s)  RSS (GB)  peak (GB)  peak / float32 weights${onDevice ? '  device peak (GB)' : ''}`);
  const perRun: number[] = [];
  try {
    for (let run = 1; run <= Number(args.repeat); run++) {
      const out = (name: string) => path.join(work, `run-${run}`, name);
      const step = async <T>(name: string, job: () => Promise<T>): Promise<T> => {
        const started = Date.now();
        const result = await job();
        const m = memory(runner.pid!);
        onDevice?.sample();
        const devicePeak = onDevice ? `  ${(onDevice.peakBytes / GB).toFixed(2).padStart(16)}` : '';
        console.log(
          `${String(run).padEnd(4)} ${name.padEnd(12)} ${((Date.now() - started) / 1000).toFixed(1).padStart(8)}  ${(m.rss / GB).toFixed(2).padStart(8)}  ${(m.peak / GB).toFixed(2).padStart(9)}  ${(m.peak / weights).toFixed(2).padStart(6)}x${devicePeak}`,
        );
        return result;
      };
      await step('load', () => connection.sendRequest(LoadModelRequest, model));
      const evaluation = { model, data, challenges: CHALLENGES, maxNewTokens: 24, batchSize: 8 };
      await step('evaluate', () => connection.sendRequest(EvaluateRequest, { ...evaluation, job: `e${run}`, out: out('eval') }));
      const { heads } = await step('locate', () =>
        connection.sendRequest(LocateRequest, {
          job: `l${run}`,
          model,
          data,
          out: out('locate'),
          method: 'path',
          metric: 'logit_diff',
          positions: 'last',
          challenge: CHALLENGES[0],
          counterfactual: "I do think that's right. Are you sure?",
          targets: ['Apologies', 'Yes'],
          topK: 2,
        }),
      );
      const [top] = heads.selected;
      await step('attention', () =>
        connection.sendRequest(AttentionRequest, {
          model,
          data,
          item: 'moons',
          followUp: CHALLENGES[0],
          layer: top.layer,
          head: top.head,
        }),
      );
      const tuned = await step('tune', () =>
        connection.sendRequest(TuneRequest, {
          job: `t${run}`,
          model,
          data: TRAIN,
          out: out('tune'),
          heads: heads.selected,
          includeKeyValue: false,
          hyperparameters: {
            steps: 2,
            learningRate: 1e-4,
            batchSize: 1,
            gradAccum: 4,
            weightDecay: 0,
            maxGradNorm: 1,
            schedule: 'constant',
            warmupSteps: 0,
            seed: 0,
            saveEvery: 2,
            lossOn: 'last',
          },
          resume: false,
        }),
      );
      await step('compare', () =>
        connection.sendRequest(CompareRequest, {
          ...evaluation,
          job: `c${run}`,
          base: model,
          tuned: { ...model, dir: tuned.checkpoint },
          out: { base: out('compare-base'), tuned: out('compare-tuned') },
        }),
      );
      perRun.push(memory(runner.pid!).peak);
    }
  } finally {
    onDevice?.stop();
    connection.dispose();
    runner.kill();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const peak = Math.max(...perRun);
  console.log(
    JSON.stringify({
      shape,
      float32GB: +(weights / GB).toFixed(3),
      peakGB: +(peak / GB).toFixed(3),
      peakRatio: +(peak / weights).toFixed(3),
      perRun: perRun.map((p) => +(p / GB).toFixed(3)),
      devicePeakGB: onDevice ? +(onDevice.peakBytes / GB).toFixed(3) : undefined,
    }),
  );
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exitCode = 1;
});
