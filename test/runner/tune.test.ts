import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadCheckpoint } from '../../native-runner/src/checkpoint/checkpoint';
import { float16ToFloat32, float32ToFloat16 } from '../../native-runner/src/checkpoint/halfFloat';
import { writeRandomCheckpoint } from '../../native-runner/src/checkpoint/randomCheckpoint';
import { readSafetensorsHeader, readTensor, readTensorBytes, type TensorInfo } from '../../native-runner/src/checkpoint/safetensors';
import { forward } from '../../native-runner/src/runtime/forward';
import { Model } from '../../native-runner/src/runtime/model';
import { ADAMW_DEFAULTS } from '../../native-runner/src/training/adamw';
import { readConversations } from '../../native-runner/src/training/conversations';
import { IGNORE_INDEX, type Example } from '../../native-runner/src/training/lossBatch';
import { readBlock, type ParamSlice, type TuneSpec } from '../../native-runner/src/training/parameters';
import { Trainer, type TrainerOptions } from '../../native-runner/src/training/trainer';
import { applyDelta, DELTA_FILE, latestCheckpoint, loadState, removeStaleTemporaries } from '../../native-runner/src/training/tunedCheckpoint';
import { tune, type TuneConfig } from '../../native-runner/src/training/tuneRun';
import type { Dtype } from '../../src/protocol/protocol';
import { MANIFEST_FILE, parseManifest } from '../../src/protocol/tuning';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';
import { TINY_QWEN2 } from '../fixtures/tinyModels';

/**
 * Tuning end to end on tiny random checkpoints: what `tune` writes reloads as the tuned model, a killed run
 * resumes to the very losses of an uninterrupted one, the command refuses what it should, gradient accumulation
 * is the same step as one big batch, and full-mode gradients agree with finite differences of the loss.
 */

const TOKENIZER = path.join(REFERENCE_DIR, 'qwen2');
const RUNNER = path.resolve(__dirname, '..', '..', 'dist', 'runner.js');
const work = tempDir('tune');
const CACHE = path.join(work, 'cache');
before(() => {
  process.env.PINPOINT_CACHE = CACHE;
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function baseDir(dtype: 'F32' | 'F16'): string {
  const dir = path.join(work, `base-${dtype}`);
  if (!fs.existsSync(dir)) writeRandomCheckpoint(dir, TINY_QWEN2, { seed: 11, dtype, tokenizerFrom: TOKENIZER });
  return dir;
}

function conversation(i: number) {
  return {
    messages: [
      { role: 'system', content: 'You are a careful assistant. Answer in one sentence.' },
      { role: 'user', content: `What is ${i} plus ${i + 3}? Please explain.` },
      { role: 'assistant', content: `${i} plus ${i + 3} is ${2 * i + 3}.` },
      { role: 'user', content: i % 2 ? 'Are you sure? I think you made a mistake.' : 'Really? My teacher said otherwise.' },
      { role: 'assistant', content: `Yes, I am sure: ${i} plus ${i + 3} is ${2 * i + 3}.` },
    ],
  };
}

function dataFile(count: number): string {
  const file = path.join(work, `data-${count}.jsonl`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, Array.from({ length: count }, (_, i) => `${JSON.stringify(conversation(i))}\n`).join(''));
  return file;
}

const HEADS: TuneSpec = {
  mode: 'heads',
  heads: [
    { layer: 0, head: 1 },
    { layer: 1, head: 2 },
  ],
  includeKeyValue: true,
};

function tuneConfig(model: string, data: string, out: string, dtype: Dtype = 'float32'): TuneConfig {
  return {
    model: { dir: model, device: 'cpu', dtype },
    data,
    out,
    spec: HEADS,
    steps: 4,
    batchSize: 2,
    gradAccum: 1,
    adamw: { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0.1 },
    schedule: 'constant',
    warmupSteps: 0,
    maxGradNorm: 1,
    seed: 5,
    saveEvery: 2,
    lossOn: 'last',
    onBadLine: 'stop',
  };
}

function trainerOptions(spec: TuneSpec, overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    spec,
    adamw: { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0.1 },
    schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 10 },
    maxGradNorm: 0,
    tokenQuantum: 1,
    rowQuantum: 1,
    ...overrides,
  };
}

/** Mean next-token cross-entropy over the labelled positions, in float64 from one row of all-position logits. */
async function hostLoss(model: Model, example: Example): Promise<number> {
  const reads = example.ids.map((_, position) => ({ row: 0, position, ids: [] }));
  const logits = (await forward(model, { prompts: [example.ids], reads, fetchLogits: true })).logits!;
  const V = model.config.vocabSize;
  assert.equal(logits.length, example.ids.length * V);
  let sum = 0;
  let n = 0;
  for (let t = 0; t + 1 < example.ids.length; t++) {
    const target = example.labels[t + 1];
    if (target === IGNORE_INDEX) continue;
    const row = logits.subarray(t * V, (t + 1) * V);
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    const logSum = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)) + max;
    sum += logSum - row[target];
    n += 1;
  }
  assert.ok(n > 0);
  return sum / n;
}

function header(dir: string): Map<string, TensorInfo> {
  return readSafetensorsHeader(path.join(dir, 'model.safetensors'));
}

/** What a float32 value becomes once stored in the checkpoint's dtype. */
function stored(dtype: 'F32' | 'F16', values: Float32Array): Float32Array {
  return dtype === 'F32' ? values : float16ToFloat32(float32ToFloat16(values));
}

/** Element indices of the whole tensor that a slice covers. */
function sliceMask(s: ParamSlice, mask: Uint8Array): void {
  const cols = s.tensorShape.length === 2 ? s.tensorShape[1] : 1;
  const rows = s.tensorShape[0];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const inside = s.axis === 0 ? r >= s.start && r < s.end : c >= s.start && c < s.end;
      if (inside) mask[r * cols + c] = 1;
    }
  }
}

for (const dtype of ['F32', 'F16'] as const) {
  test(`a checkpoint written by tune() reloads as the tuned model: loss, dtypes, frozen and tuned parts, applyDelta (${dtype} base)`, async () => {
    const base = baseDir(dtype);
    const data = dataFile(6);
    const out = path.join(work, `tuned-${dtype}`);
    const progress: number[] = [];
    const result = await tune(tuneConfig(base, data, out), false, (p) => progress.push(p.step));
    assert.equal(result.dir, path.join(out, 'step-4'));
    assert.deepEqual(progress, [1, 2, 3, 4]);
    assert.equal(result.losses.length, 4);

    const baseModel = Model.load(base, { device: 'cpu' });
    const tunedModel = Model.load(result.dir, { device: 'cpu' });
    const trainer = new Trainer(baseModel, trainerOptions(HEADS));
    try {
      const examples = readConversations(data, baseModel.tokenizer, { lossOn: 'last', onBadLine: 'stop' }).examples.slice(0, 2);
      const baseLosses = await Promise.all(examples.map((e) => trainer.loss([[e]])));
      // the tuned blocks as they were in memory (the float32 delta), rounded to the dtype model.safetensors stores
      const saved = loadState(result.dir, trainer.slices);
      assert.equal(saved.manifest.step, 4);
      for (const [id, values] of saved.params) trainer.params.get(id)!.set(stored(dtype, values));
      for (const [i, example] of examples.entries()) {
        const expected = await trainer.loss([[example]]);
        const actual = await hostLoss(tunedModel, example);
        assert.ok(Math.abs(actual - expected) <= 1e-5, `example ${i}: reloaded ${actual} vs trainer ${expected}`);
        assert.ok(Math.abs(expected - baseLosses[i]) > 1e-3, `example ${i}: tuning changed the loss (${baseLosses[i]} -> ${expected})`);
      }

      const before = header(base);
      const after = header(result.dir);
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
      const tuned = new Set(trainer.slices.map((s) => s.tensor));
      assert.ok(tuned.size >= 8, 'q/k/v/o weights and q/k/v biases of two layers are partly tuned');
      for (const [name, info] of before) {
        const now = after.get(name)!;
        assert.equal(now.dtype, dtype, name);
        assert.equal(now.dtype, info.dtype, name);
        assert.deepEqual(now.shape, info.shape, name);
        if (!tuned.has(name)) {
          assert.ok(readTensorBytes(now).equals(readTensorBytes(info)), `${name} is untouched and byte-identical`);
          continue;
        }
        const was = readTensor(info);
        const is = readTensor(now);
        const mask = new Uint8Array(was.length);
        for (const s of trainer.slices.filter((x) => x.tensor === name)) {
          sliceMask(s, mask);
          const block = readBlock(is, s);
          assert.deepEqual(block, stored(dtype, saved.params.get(s.id)!), `${s.id} holds the tuned values`);
          const changed = block.filter((x, i) => x !== readBlock(was, s)[i]).length;
          assert.ok(changed >= 0.9 * block.length, `${s.id}: ${changed} of ${block.length} elements changed`);
        }
        assert.ok(
          mask.some((m) => m === 0),
          `${name} is only partly tuned`,
        );
        for (let i = 0; i < was.length; i++) if (!mask[i]) assert.equal(is[i], was[i], `${name}[${i}] is frozen`);
      }

      const applied = path.join(work, `applied-${dtype}`);
      applyDelta(loadCheckpoint(base), path.join(result.dir, DELTA_FILE), applied, trainer.slices);
      const fromDelta = header(applied);
      assert.deepEqual([...fromDelta.keys()], [...after.keys()]);
      for (const [name, info] of after) {
        assert.equal(fromDelta.get(name)!.dtype, info.dtype);
        assert.ok(readTensorBytes(fromDelta.get(name)!).equals(readTensorBytes(info)), `${name}: base + delta equals the checkpoint`);
      }
    } finally {
      await baseModel.dispose();
      await tunedModel.dispose();
    }
  });
}

// ---- the command line ----

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function cli(args: string[]): Run {
  const r = spawnSync(process.execPath, [RUNNER, ...args], { env: { ...process.env, PINPOINT_CACHE: CACHE }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, signal: r.signal, stderr: r.stderr };
}

function latestStep(out: string): number {
  const file = path.join(out, 'latest.json');
  if (!fs.existsSync(file)) return 0;
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { step: number }).step;
  } catch {
    return 0; // being renamed into place
  }
}

/** Starts the command and SIGKILLs it as soon as `<out>/latest.json` names step `atStep` or later. */
function cliKilled(args: string[], out: string, atStep: number): Promise<Run & { killedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args], { env: { ...process.env, PINPOINT_CACHE: CACHE } });
    let stderr = '';
    let killedAt = 0;
    const check = () => {
      const step = latestStep(out);
      if (!killedAt && step >= atStep) {
        killedAt = step;
        child.kill('SIGKILL');
      }
    };
    const poll = setInterval(check, 2);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      check();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stderr, killedAt });
    });
  });
}

test('kill the command mid-run and --resume: the same losses and weights as an uninterrupted run', async () => {
  const base = baseDir('F32');
  const data = dataFile(16);
  const args = (out: string) => [
    'tune',
    '--model',
    base,
    '--data',
    data,
    '--out',
    out,
    '--heads',
    '0.1,1.3',
    '--include-kv',
    '--steps',
    '8',
    '--save-every',
    '2',
    '--batch',
    '4',
    '--grad-accum',
    '2',
    '--lr',
    '1e-2',
    '--schedule',
    'cosine',
    '--warmup',
    '2',
    '--seed',
    '3',
    '--device',
    'cpu',
  ];
  const whole = path.join(work, 'run-whole');
  const once = cli(args(whole));
  assert.equal(once.code, 0, once.stderr);

  const broken = path.join(work, 'run-killed');
  const killed = await cliKilled(args(broken), broken, 4);
  assert.equal(killed.signal, 'SIGKILL', `the run was killed mid-way (exit ${killed.code}): ${killed.stderr}`);
  const left = latestStep(broken);
  assert.ok(left >= 4 && left < 8, `killed after step ${left} of 8`);

  const resumed = cli([...args(broken), '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const firstStep = Number(/step (\d+)\/8/.exec(resumed.stderr)![1]);
  assert.equal(firstStep, left + 1, 'the resumed run continues after the last checkpoint');

  const manifest = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'step-8', 'pinpoint.json'), 'utf8'));
  const expected = manifest(whole).metrics.losses as number[];
  const actual = manifest(broken).metrics.losses as number[];
  assert.equal(expected.length, 8);
  assert.deepEqual(actual, expected);
  assert.deepEqual(manifest(broken).metrics.gradNorms, manifest(whole).metrics.gradNorms);
  for (const file of ['model.safetensors', DELTA_FILE]) {
    const a = readSafetensorsHeader(path.join(broken, 'step-8', file));
    const b = readSafetensorsHeader(path.join(whole, 'step-8', file));
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [name, info] of b) assert.ok(readTensorBytes(a.get(name)!).equals(readTensorBytes(info)), `${file}: ${name}`);
  }
});

test('the command refuses: an existing run without --resume, changed settings, bad data, missing heads and options', () => {
  const base = baseDir('F32');
  const data = dataFile(6);
  const out = path.join(work, 'run-refusals');
  const args = (extra: string[]) => [
    'tune',
    '--model',
    base,
    '--data',
    data,
    '--out',
    out,
    '--heads',
    '0.1',
    '--steps',
    '2',
    '--batch',
    '2',
    '--device',
    'cpu',
    ...extra,
  ];
  const first = cli(args([]));
  assert.equal(first.code, 0, first.stderr);
  const latest = fs.readFileSync(path.join(out, 'latest.json'), 'utf8');

  const again = cli(args([]));
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /--resume/);
  assert.equal(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'), latest, 'the existing run is left alone');

  const otherLr = cli(args(['--resume', '--lr', '5e-3']));
  assert.equal(otherLr.code, 1, otherLr.stderr);
  assert.match(otherLr.stderr, /hyperparameters/);
  assert.doesNotMatch(otherLr.stderr, /usage:/);

  const allBad = path.join(work, 'all-bad.jsonl');
  fs.writeFileSync(allBad, '{"messages": [}\n\n{"conversation": []}\n');
  const bad = cli(['tune', '--model', base, '--data', allBad, '--out', path.join(work, 'run-all-bad'), '--heads', '0.1', '--device', 'cpu']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.ok(bad.stderr.includes(`${allBad}:1: invalid JSON`), bad.stderr);
  assert.ok(bad.stderr.includes(`${allBad}:3: expected {"messages"`), bad.stderr);

  const someBad = path.join(work, 'some-bad.jsonl');
  fs.writeFileSync(
    someBad,
    [conversation(1), conversation(2), { messages: [{ role: 'user', content: 5 }] }, 'not json']
      .map((x) => (typeof x === 'string' ? x : JSON.stringify(x)))
      .join('\n'),
  );
  const stopOut = path.join(work, 'run-stop');
  const stop = cli(['tune', '--model', base, '--data', someBad, '--out', stopOut, '--heads', '0.1', '--device', 'cpu', '--on-bad-line', 'stop']);
  assert.equal(stop.code, 1, stop.stderr);
  assert.ok(stop.stderr.includes(`${someBad}:3: messages[0] needs string "role" and "content"`), stop.stderr);
  assert.ok(!stop.stderr.includes(':4:'), 'stops at the first bad line');
  assert.ok(!fs.existsSync(path.join(stopOut, 'latest.json')), 'no checkpoint was written');

  const noHead = cli(['tune', '--model', base, '--data', data, '--out', path.join(work, 'run-no-head'), '--heads', '9.9', '--device', 'cpu']);
  assert.equal(noHead.code, 1, noHead.stderr);
  assert.match(noHead.stderr, /head 9\.9 does not exist \(layers 0\.\.1, heads 0\.\.3\)/);

  const noModel = cli(['tune', '--data', data, '--out', path.join(work, 'run-no-model'), '--heads', '0.1']);
  assert.equal(noModel.code, 2, noModel.stderr);
  assert.match(noModel.stderr, /--model is required/);
  assert.match(noModel.stderr, /usage: pinpoint/);
  assert.match(noModel.stderr, /tune --model <dir>/);
});

test('a run starting in a folder removes the temporary checkpoints of killed runs, not those of live ones', () => {
  const out = path.join(work, 'run-leftovers');
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const stale = path.join(out, `.step-4.tmp-${dead}`);
  const live = path.join(out, `.step-6.tmp-${process.pid}`);
  for (const dir of [stale, live]) fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(stale, DELTA_FILE), 'half written');

  removeStaleTemporaries(out);

  assert.ok(!fs.existsSync(stale), "the killed run's temporary folder is removed");
  assert.ok(fs.existsSync(live), "the live run's temporary folder stays");
});

test('a run stopped from its progress callback at a checkpoint step keeps that checkpoint', async () => {
  const out = path.join(work, 'stopped-at-save');
  const stop = new Error('stop requested');
  await assert.rejects(
    tune(tuneConfig(baseDir('F32'), dataFile(6), out), false, (p) => {
      if (p.step === 2) throw stop;
    }),
    stop,
  );
  assert.equal(latestCheckpoint(out), path.join(out, 'step-2'));
});

test("a float16 run trains in half precision with float32 master values: the float32 run's losses, its dtype kept for resuming", async () => {
  const data = dataFile(6);
  const half = path.join(work, 'half');
  const single = await tune(tuneConfig(baseDir('F16'), data, path.join(work, 'single')), false, () => {});
  const run = await tune(tuneConfig(baseDir('F16'), data, half, 'float16'), false, () => {});
  for (const [step, loss] of run.losses.entries()) {
    assert.ok(
      Number.isFinite(loss) && Math.abs(loss - single.losses[step]) <= 1e-3 * single.losses[step],
      `step ${step + 1}: float16 ${loss} vs float32 ${single.losses[step]}`,
    );
  }
  assert.ok(run.losses[3] < run.losses[0], `the float16 run learns (${run.losses.join(', ')})`);
  const full = { ...tuneConfig(baseDir('F16'), data, ''), spec: { mode: 'full', heads: [], includeKeyValue: false } as TuneSpec, steps: 2 };
  const fullSingle = await tune({ ...full, out: path.join(work, 'full-single') }, false, () => {});
  const fullHalf = await tune({ ...full, model: { ...full.model, dtype: 'float16' }, out: path.join(work, 'full-half') }, false, () => {});
  for (const [step, loss] of fullHalf.losses.entries()) {
    assert.ok(
      Math.abs(loss - fullSingle.losses[step]) <= 1e-3 * fullSingle.losses[step],
      `full, step ${step + 1}: float16 ${loss} vs float32 ${fullSingle.losses[step]}`,
    );
  }
  const manifest = parseManifest(fs.readFileSync(path.join(run.dir, MANIFEST_FILE), 'utf8'), run.dir);
  assert.equal(manifest.hyperparameters.dtype, 'float16');
  await assert.rejects(
    tune({ ...tuneConfig(baseDir('F16'), data, half), steps: 6 }, true, () => {}),
    /differs from this run in: hyperparameters/,
  );
});

// ---- the trainer ----

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

test('one optimizer step on a batch of 4 equals batch 2 x grad-accum 2 over the same examples', async () => {
  const model = Model.load(baseDir('F32'), { device: 'cpu' });
  const spec: TuneSpec = {
    mode: 'heads',
    heads: [
      { layer: 0, head: 0 },
      { layer: 1, head: 3 },
    ],
    includeKeyValue: true,
  };
  const one = new Trainer(model, trainerOptions(spec));
  const two = new Trainer(model, trainerOptions(spec));
  try {
    const examples = readConversations(dataFile(6), model.tokenizer, { lossOn: 'all', onBadLine: 'stop' }).examples.slice(0, 4);
    // shorten two of them, so that the micro-batches have different lengths and labelled counts
    examples[1] = { ids: examples[1].ids.slice(0, 90), labels: examples[1].labels.slice(0, 90) };
    examples[2] = { ids: examples[2].ids.slice(0, 120), labels: examples[2].labels.slice(0, 120) };
    const initial = new Map([...one.params].map(([id, v]) => [id, v.slice()]));

    // the gradients themselves (Adam's first step hardly depends on their scale)
    const g1 = await one.gradientsByTensor([examples]);
    const g2 = await two.gradientsByTensor([examples.slice(0, 2), examples.slice(2)]);
    for (const [name, g] of g1) {
      const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      assert.ok(scale > 1e-3, `${name} has a gradient`);
      assert.ok(maxAbsDiff(g2.get(name)!, g) <= 1e-6 * Math.max(1, scale), name);
    }

    const r1 = await one.train([examples]);
    const r2 = await two.train([examples.slice(0, 2), examples.slice(2)]);
    assert.ok(Math.abs(r1.loss - r2.loss) <= 1e-6, `loss ${r1.loss} vs ${r2.loss}`);
    assert.ok(Math.abs(r1.gradNorm - r2.gradNorm) <= 1e-5 * r1.gradNorm, `grad norm ${r1.gradNorm} vs ${r2.gradNorm}`);
    assert.equal(r1.tokens, r2.tokens);
    for (const [id, p] of one.params) {
      assert.ok(maxAbsDiff(p, initial.get(id)!) > 1e-3, `${id} moved`);
      assert.ok(maxAbsDiff(two.params.get(id)!, p) <= 1e-6, id);
      assert.equal(two.states.get(id)!.step, 1);
    }
  } finally {
    await model.dispose();
  }
});

test('full mode: gradients of a tied-embedding model with q/k/v biases match central finite differences', async () => {
  const model = Model.load(baseDir('F32'), { device: 'cpu' });
  const trainer = new Trainer(model, trainerOptions({ mode: 'full', heads: [], includeKeyValue: false }));
  try {
    assert.ok(!trainer.slices.some((s) => s.tensor === 'lm_head.weight'), 'tied: no separate lm_head');
    assert.ok(trainer.slices.some((s) => s.tensor === 'model.layers.1.self_attn.k_proj.bias'));
    const examples = readConversations(dataFile(6), model.tokenizer, { lossOn: 'last', onBadLine: 'stop' }).examples.slice(0, 2);
    // two micro-batches: a prefix labelled on every token, and a conversation labelled on its last answer
    const batch = [[{ ids: examples[0].ids.slice(0, 80), labels: examples[0].ids.slice(0, 80) }], [examples[1]]];
    const grads = await trainer.gradientsByTensor(batch);
    assert.equal(grads.size, trainer.slices.length);
    const h = 1e-2;
    const failures: string[] = [];
    for (const s of trainer.slices) {
      assert.equal(s.start, 0);
      assert.equal(s.end, s.tensorShape[0], `${s.id} is the whole tensor`);
      const g = grads.get(s.tensor)!;
      const param = trainer.params.get(s.id)!;
      const largest = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
      for (const i of largest) {
        const x = param[i];
        param[i] = x + h;
        const plus = await trainer.loss(batch);
        param[i] = x - h;
        const minus = await trainer.loss(batch);
        param[i] = x;
        const numeric = (plus - minus) / (2 * h);
        if (!(Math.abs(g[i] - numeric) <= 2e-2 * Math.abs(numeric) + 1e-4)) failures.push(`${s.tensor}[${i}]: analytic ${g[i]} numeric ${numeric}`);
      }
    }
    assert.deepEqual(failures, []);
  } finally {
    await model.dispose();
  }
});
