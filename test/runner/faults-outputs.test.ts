import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openWeights } from '../../native-runner/src/checkpoint/safetensors';
import { DEFAULT_CHALLENGE } from '../../native-runner/src/evaluation/challengeProtocol';
import { readEvaluationFile } from '../../native-runner/src/evaluation/evaluationFile';
import { RESULTS_FILE, SUMMARY_FILE } from '../../src/protocol/evaluation';
import { runEvaluation } from '../../native-runner/src/evaluation/runEvaluation';
import { knockout } from '../../native-runner/src/localisation/knockout';
import { cachedSha256, sha256CacheEntry, weightsSha256 } from '../../native-runner/src/model/weightsSha256';
import { FolderInUseError, LOCK_FILE, OutputLock } from '../../native-runner/src/outputLock';
import { Model } from '../../native-runner/src/runtime/model';
import type { ComparisonReport } from '../../src/protocol/comparison';
import type { KnockoutReport, Summary } from '../../src/protocol/evaluation';
import type { HeadsFile } from '../../src/protocol/heads';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';

/**
 * Output folders under faults: a second run on a folder another run holds is refused naming the holder, for every
 * job that writes one; a lock whose process is gone is taken over; a run killed with SIGKILL leaves its folder
 * readable and a rerun ends where an uninterrupted run ends; and a model is known by its weights' content, so
 * replaced weights are neither served from the weight cache nor mixed into a resumed evaluation. The command line
 * runs from dist/runner.js (build it first), on the reference Qwen2 and the editor's sample files.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const RUNNER = path.join(ROOT, 'dist', 'runner.js');
const QWEN2 = path.join(REFERENCE_DIR, 'qwen2');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'editor', 'sample-eval.jsonl');
const TRAIN = path.join(ROOT, 'test', 'fixtures', 'editor', 'train.jsonl');
const work = tempDir('faults-outputs');
const CACHE = path.join(work, 'cache');
const HOST = os.hostname();
before(() => {
  process.env.PINPOINT_CACHE = CACHE;
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

// ---- running the command line ----

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  finished: Promise<Finished>;
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, [RUNNER, ...args], { cwd: ROOT, env: { ...process.env, PINPOINT_CACHE: CACHE } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, finished };
}

function pinpoint(args: string[]): Promise<Finished> {
  return start(args).finished;
}

/** Waits until `ready()` holds; fails when the run ends first. */
async function until(run: Started, ready: () => boolean, what: string): Promise<void> {
  while (!ready()) {
    if (run.child.exitCode !== null || run.child.signalCode !== null) {
      const { code, stderr } = await run.finished;
      assert.fail(`the run ended (exit ${code}) before ${what}: ${stderr}`);
    }
    await sleep(2);
  }
}

function lockOf(out: string): string {
  return path.join(out, LOCK_FILE);
}

/**
 * Starts `args`, freezes it (SIGSTOP) once it holds `out`, runs the same command meanwhile, and lets the first go on:
 * the second run meets a live holder whatever the machine's speed.
 */
async function secondRunWhileHeld(args: string[], out: string): Promise<{ first: Finished; second: Finished; pid: number }> {
  const first = start(args);
  await until(first, () => fs.existsSync(lockOf(out)), `it took ${out}`);
  first.child.kill('SIGSTOP');
  let second: Finished;
  try {
    second = await pinpoint(args);
  } finally {
    first.child.kill('SIGCONT');
  }
  return { first: await first.finished, second, pid: first.child.pid! };
}

function assertRefusedBy(second: Finished, out: string, pid: number, job: string, command: string): void {
  assert.equal(second.code, 1, second.stderr);
  const holder = `${out} is in use by another run: pid ${pid} on ${HOST}, ${job} since `;
  assert.ok(second.stderr.includes(holder), `expected "${holder}" in: ${second.stderr}`);
  assert.match(second.stderr, new RegExp(`since \\d{4}-\\d\\d-\\d\\dT[^ ]+ \\(pinpoint ${command} `));
  assert.ok(second.stderr.includes(`remove ${lockOf(out)}`), second.stderr);
}

/**
 * Starts `args`, freezes it once `ready()` holds, and kills it with SIGKILL: what a crash leaves, at a point the
 * test chooses rather than wherever the run happens to be.
 */
async function killedWhen(args: string[], ready: () => boolean, what: string): Promise<void> {
  const run = start(args);
  await until(run, ready, what);
  run.child.kill('SIGSTOP');
  run.child.kill('SIGKILL');
  assert.equal((await run.finished).signal, 'SIGKILL');
}

function assertTakenOver(rerun: Finished, out: string): void {
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.ok(rerun.stderr.includes(`${lockOf(out)} was left by a run that is no longer running (pid `), rerun.stderr);
  assert.match(rerun.stderr, /; taking the folder over\n/);
}

/** No file under its final name is half written: every .json parses, every line of a .jsonl but a torn last one does. */
function assertReadable(dir: string): void {
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.name.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(fs.readFileSync(file, 'utf8')), `${file} is half written`);
    if (entry.name.endsWith('.jsonl')) {
      const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
      for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `${file} has a half-written line before its last`);
    }
  }
}

function lines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function locksUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => path.basename(f) === LOCK_FILE);
}

// ---- each job's command ----

const evalArgs = (out: string, ...rest: string[]) => [
  'eval',
  '--model',
  QWEN2,
  '--data',
  SAMPLE,
  '--out',
  out,
  '--device',
  'cpu',
  '--batch-size',
  '1',
  '--max-new-tokens',
  '12',
  ...rest,
];
const locateArgs = (out: string) => ['locate', '--model', QWEN2, '--data', SAMPLE, '--out', out, '--max-items', '2', '--device', 'cpu'];
const knockoutArgs = (out: string) => [
  'knockout',
  '--model',
  QWEN2,
  '--data',
  SAMPLE,
  '--out',
  out,
  '--heads',
  '0.1,2.3',
  '--seeds',
  '1',
  '--max-items',
  '2',
  '--batch-size',
  '1',
  '--max-new-tokens',
  '8',
  '--device',
  'cpu',
];
const tuneArgs = (out: string, ...rest: string[]) => [
  'tune',
  '--model',
  QWEN2,
  '--data',
  TRAIN,
  '--out',
  out,
  '--heads',
  '0.1,1.2',
  '--steps',
  '6',
  '--save-every',
  '2',
  '--batch',
  '2',
  '--lr',
  '1e-2',
  '--seed',
  '3',
  '--device',
  'cpu',
  ...rest,
];
const compareArgs = (out: string) => [
  'compare',
  '--base',
  QWEN2,
  '--tuned',
  QWEN2,
  '--data',
  SAMPLE,
  '--out',
  out,
  '--batch',
  '1',
  '--max-new-tokens',
  '8',
  '--device',
  'cpu',
];

/** Each job's uninterrupted run, once, for the runs that were interrupted to be compared with. */
const uninterrupted = new Map<string, Promise<string>>();

function wholeRun(name: string, args: (out: string) => string[]): Promise<string> {
  let run = uninterrupted.get(name);
  if (!run) {
    const out = path.join(work, `whole-${name}`);
    run = pinpoint(args(out)).then((r) => {
      assert.equal(r.code, 0, r.stderr);
      return out;
    });
    uninterrupted.set(name, run);
  }
  return run;
}

// ---- a folder is held by one run at a time ----

test('two pinpoint eval on one folder: the second is refused naming the holder, and results.jsonl has each item once', async () => {
  const out = path.join(work, 'eval-twice');
  const { first, second, pid } = await secondRunWhileHeld(evalArgs(out), out);
  assertRefusedBy(second, out, pid, 'evaluation', 'eval');
  assert.equal(first.code, 0, first.stderr);
  const ids = lines(path.join(out, RESULTS_FILE)).map((line) => JSON.parse(line).id as string);
  assert.deepEqual(
    ids,
    readEvaluationFile(SAMPLE).items.map((item) => item.id),
  );
  assert.ok(!fs.existsSync(lockOf(out)), 'the lock is removed once the run is done');
});

test('a pinpoint locate on a folder another locate holds is refused naming it; the holder writes heads.json', async () => {
  const out = path.join(work, 'locate-twice');
  const { first, second, pid } = await secondRunWhileHeld(locateArgs(out), out);
  assertRefusedBy(second, out, pid, 'localisation', 'locate');
  assert.equal(first.code, 0, first.stderr);
  assert.equal(readJson<HeadsFile>(path.join(out, 'heads.json')).format, 'pinpoint-heads/1');
  assert.ok(!fs.existsSync(lockOf(out)));
});

test('a pinpoint knockout on a folder another knockout holds is refused naming it; the holder writes knockout.json', async () => {
  const out = path.join(work, 'knockout-twice');
  const { first, second, pid } = await secondRunWhileHeld(knockoutArgs(out), out);
  assertRefusedBy(second, out, pid, 'knockout', 'knockout');
  assert.equal(first.code, 0, first.stderr);
  assert.equal(readJson<KnockoutReport>(path.join(out, 'knockout.json')).format, 'pinpoint-knockout/1');
  assert.deepEqual(locksUnder(out), [], "neither the folder nor a condition's folder stays locked");
});

test('a pinpoint tune on a run folder another tune holds is refused naming it, --resume or not', async () => {
  const out = path.join(work, 'tune-twice');
  const first = start(tuneArgs(out));
  await until(first, () => fs.existsSync(lockOf(out)), 'it took its folder');
  first.child.kill('SIGSTOP');
  let fresh: Finished;
  let resumed: Finished;
  try {
    fresh = await pinpoint(tuneArgs(out));
    resumed = await pinpoint(tuneArgs(out, '--resume'));
  } finally {
    first.child.kill('SIGCONT');
  }
  for (const refused of [fresh, resumed]) assertRefusedBy(refused, out, first.child.pid!, 'tuning', 'tune');
  const done = await first.finished;
  assert.equal(done.code, 0, done.stderr);
  assert.equal(readJson<{ step: number }>(path.join(out, 'latest.json')).step, 6);
});

test('a pinpoint compare on a folder another compare holds is refused naming it; the holder writes comparison.json', async () => {
  const out = path.join(work, 'compare-twice');
  const { first, second, pid } = await secondRunWhileHeld(compareArgs(out), out);
  assertRefusedBy(second, out, pid, 'comparison', 'compare');
  assert.equal(first.code, 0, first.stderr);
  assert.equal(readJson<ComparisonReport>(path.join(out, 'comparison.json')).format, 'pinpoint-comparison/1');
  assert.deepEqual(locksUnder(out), []);
});

test('a lock left by a process that is gone is taken over, said on stderr, and the run completes and removes it', async () => {
  const out = path.join(work, 'stale-lock');
  fs.mkdirSync(out, { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const startedAt = '2025-01-01T00:00:00.000Z';
  fs.writeFileSync(lockOf(out), JSON.stringify({ pid: dead, host: HOST, command: 'pinpoint eval --out x', job: 'evaluation', startedAt }));
  const run = await pinpoint(evalArgs(out, '--max-items', '2'));
  assertTakenOver(run, out);
  assert.ok(
    run.stderr.includes(`(pid ${dead} on ${HOST}, evaluation since ${startedAt} (pinpoint eval --out x)); taking the folder over`),
    run.stderr,
  );
  assert.equal(lines(path.join(out, RESULTS_FILE)).length, 2);
  assert.ok(!fs.existsSync(lockOf(out)));
});

test('a run that fails removes its lock: eval refused for other settings, tune on bad data', async () => {
  const out = path.join(work, 'failed-eval');
  assert.equal((await pinpoint(evalArgs(out, '--max-items', '1'))).code, 0);
  const refused = await pinpoint(evalArgs(out, '--max-items', '1', '--max-new-tokens', '5'));
  assert.equal(refused.code, 1);
  assert.ok(refused.stderr.includes(`${out} holds results of a run with other settings (maxNewTokens differ)`), refused.stderr);
  assert.ok(!fs.existsSync(lockOf(out)), 'the refused eval leaves no lock');

  const bad = path.join(work, 'all-bad.jsonl');
  fs.writeFileSync(bad, '{"messages": [}\n');
  const tuneOut = path.join(work, 'failed-tune');
  const failed = await pinpoint(['tune', '--model', QWEN2, '--data', bad, '--out', tuneOut, '--heads', '0.1', '--device', 'cpu']);
  assert.equal(failed.code, 1);
  assert.ok(failed.stderr.includes(`${bad}:1: invalid JSON`), failed.stderr);
  assert.ok(!fs.existsSync(lockOf(tuneOut)), 'the failed tune leaves no lock');
});

test('a run ended by SIGTERM removes its lock and still dies of the signal; the next run resumes it', async () => {
  const out = path.join(work, 'sigterm');
  const run = start(evalArgs(out));
  await until(run, () => lines(path.join(out, RESULTS_FILE)).length > 0, 'its first result');
  run.child.kill('SIGTERM');
  const ended = await run.finished;
  assert.equal(ended.signal, 'SIGTERM', ended.stderr);
  assert.ok(!fs.existsSync(lockOf(out)), 'SIGTERM leaves no lock');
  const resumed = await pinpoint(evalArgs(out));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /taking the folder over/);
  assert.deepEqual(lines(path.join(out, RESULTS_FILE)), lines(path.join(await wholeRun('eval', evalArgs), RESULTS_FILE)));
});

test('a lock that cannot be read, or one from another host, is refused and left alone, never taken over', () => {
  const garbled = path.join(work, 'garbled-lock');
  fs.mkdirSync(garbled, { recursive: true });
  fs.writeFileSync(lockOf(garbled), '{"pid": 12');
  assert.throws(() => OutputLock.take(garbled, 'evaluation'), {
    message: `${lockOf(garbled)} is not a lock pinpoint can read (expected JSON {"pid", "host", "command", "job", "startedAt"}, found "{\\"pid\\": 12"); if no run is writing ${garbled}, remove it`,
  });
  assert.equal(fs.readFileSync(lockOf(garbled), 'utf8'), '{"pid": 12');

  const remote = path.join(work, 'remote-lock');
  fs.mkdirSync(remote, { recursive: true });
  const holder = {
    pid: spawnSync(process.execPath, ['-e', '']).pid!,
    host: `not-${HOST}`,
    command: 'pinpoint tune',
    job: 'tuning',
    startedAt: '2025-01-01T00:00:00.000Z',
  };
  fs.writeFileSync(lockOf(remote), JSON.stringify(holder));
  assert.throws(
    () => OutputLock.take(remote, 'tuning'),
    (err: unknown) => {
      assert.ok(err instanceof FolderInUseError);
      assert.deepEqual(err.holder, holder);
      assert.match(err.message, new RegExp(`in use by another run: pid ${holder.pid} on not-${HOST}, tuning since`));
      return true;
    },
  );
  assert.deepEqual(readJson(lockOf(remote)), holder);
});

test('a lock naming this process that it does not hold (left by an earlier process with the same pid) is taken over', () => {
  const out = path.join(work, 'same-pid-lock');
  fs.mkdirSync(out, { recursive: true });
  const left = { pid: process.pid, host: HOST, command: 'pinpoint eval', job: 'evaluation', startedAt: '2025-01-01T00:00:00.000Z' };
  fs.writeFileSync(lockOf(out), JSON.stringify(left));
  const lock = OutputLock.take(out, 'evaluation');
  const now = readJson<typeof left>(lockOf(out));
  assert.equal(now.pid, process.pid);
  assert.notEqual(now.startedAt, left.startedAt, "the lock is this take's, not the one left");
  lock.release();
  assert.ok(!fs.existsSync(lockOf(out)));
});

test('in one process (the server), a run stopped midway does not keep its folders from the next run', async () => {
  const model = Model.load(QWEN2, { device: 'cpu' });
  try {
    const data = readEvaluationFile(SAMPLE);
    const items = data.items.slice(0, 2);
    const stop = new Error('stopped');
    const out = path.join(work, 'in-process-eval');
    const evaluation = (onProgress?: () => void) =>
      runEvaluation({
        model,
        modelDir: QWEN2,
        judge: null,
        data,
        items,
        outDir: out,
        challenges: [DEFAULT_CHALLENGE],
        maxNewTokens: 6,
        batchSize: 1,
        onProgress,
      });
    await assert.rejects(
      evaluation(() => {
        throw stop;
      }),
      stop,
    );
    assert.ok(!fs.existsSync(lockOf(out)), 'a stopped evaluation releases its folder');
    const summary = await evaluation();
    assert.deepEqual(summary.progress, { done: 2, total: 2 });
    assert.ok(!fs.existsSync(lockOf(out)));

    const knocked = path.join(work, 'in-process-knockout');
    const run = (onProgress?: (p: { stage: string; done: number }) => void) =>
      knockout({
        model,
        modelDir: QWEN2,
        data,
        items,
        heads: [{ layer: 0, head: 1 }],
        outDir: knocked,
        challenges: [DEFAULT_CHALLENGE],
        seeds: [1],
        batchSize: 1,
        maxNewTokens: 6,
        onProgress,
      });
    await assert.rejects(
      run((p) => {
        if (p.stage === 'zero' && p.done > 0) throw stop;
      }),
      stop,
    );
    assert.deepEqual(locksUnder(knocked), [], 'a stopped knockout releases its folder and the condition it was in');
    const report = await run();
    assert.deepEqual(readJson(path.join(knocked, 'knockout.json')), JSON.parse(JSON.stringify(report)));
  } finally {
    await model.dispose();
  }
});

// ---- SIGKILL mid-run: the folder stays readable and a rerun ends where an uninterrupted run ends ----

test('eval killed with SIGKILL mid-run: readable folder, and the rerun takes the dead lock over and ends with the uninterrupted results', async () => {
  const out = path.join(work, 'eval-killed');
  await killedWhen(evalArgs(out), () => lines(path.join(out, RESULTS_FILE)).length >= 2, 'two results were written');
  assertReadable(out);
  assert.ok(fs.existsSync(lockOf(out)), 'SIGKILL leaves the lock');
  const rerun = await pinpoint(evalArgs(out));
  assertTakenOver(rerun, out);
  assert.match(rerun.stderr, /, \d+ from an earlier run/);
  const whole = await wholeRun('eval', evalArgs);
  assert.deepEqual(lines(path.join(out, RESULTS_FILE)), lines(path.join(whole, RESULTS_FILE)));
  assert.deepEqual(readJson<Summary>(path.join(out, SUMMARY_FILE)).metrics, readJson<Summary>(path.join(whole, SUMMARY_FILE)).metrics);
});

test('locate killed with SIGKILL: no heads.json, and the rerun takes over and scores the heads as an uninterrupted run', async () => {
  const out = path.join(work, 'locate-killed');
  await killedWhen(locateArgs(out), () => fs.existsSync(lockOf(out)), 'it took its folder');
  assertReadable(out);
  assert.ok(!fs.existsSync(path.join(out, 'heads.json')));
  const rerun = await pinpoint(locateArgs(out));
  assertTakenOver(rerun, out);
  const heads = readJson<HeadsFile>(path.join(out, 'heads.json'));
  const whole = readJson<HeadsFile>(path.join(await wholeRun('locate', locateArgs), 'heads.json'));
  assert.deepEqual({ ...heads, seconds: 0 }, { ...whole, seconds: 0 });
});

test('knockout killed with SIGKILL in its second condition: the rerun takes both locks over and writes the uninterrupted knockout.json', async () => {
  const out = path.join(work, 'knockout-killed');
  await killedWhen(knockoutArgs(out), () => fs.existsSync(lockOf(path.join(out, 'zero'))), 'the zero condition began');
  assertReadable(out);
  assert.deepEqual(locksUnder(out).sort(), [LOCK_FILE, path.join('zero', LOCK_FILE)]);
  const rerun = await pinpoint(knockoutArgs(out));
  assertTakenOver(rerun, out);
  assertTakenOver(rerun, path.join(out, 'zero'));
  const whole = await wholeRun('knockout', knockoutArgs);
  assert.deepEqual(readJson(path.join(out, 'knockout.json')), readJson(path.join(whole, 'knockout.json')));
  assert.deepEqual(locksUnder(out), []);
});

test('tune killed with SIGKILL after a checkpoint: --resume takes the dead lock over and ends with the uninterrupted losses', async () => {
  const out = path.join(work, 'tune-killed');
  const latestStep = () => (fs.existsSync(path.join(out, 'latest.json')) ? readJson<{ step: number }>(path.join(out, 'latest.json')).step : 0);
  await killedWhen(tuneArgs(out), () => latestStep() >= 2, 'its first checkpoint');
  assertReadable(out);
  const resumed = await pinpoint(tuneArgs(out, '--resume'));
  assertTakenOver(resumed, out);
  const losses = (dir: string) => readJson<{ metrics: { losses: number[] } }>(path.join(dir, 'step-6', 'pinpoint.json')).metrics.losses;
  const whole = await wholeRun('tune', tuneArgs);
  assert.equal(losses(whole).length, 6);
  assert.deepEqual(losses(out), losses(whole));
});

test('compare killed with SIGKILL while evaluating the tuned model: the rerun takes over and writes the uninterrupted comparison', async () => {
  const out = path.join(work, 'compare-killed');
  await killedWhen(compareArgs(out), () => lines(path.join(out, 'tuned', RESULTS_FILE)).length > 0, 'the tuned model had a result');
  assertReadable(out);
  assert.ok(!fs.existsSync(path.join(out, 'comparison.json')));
  const rerun = await pinpoint(compareArgs(out));
  assertTakenOver(rerun, out);
  assertTakenOver(rerun, path.join(out, 'tuned'));
  const whole = await wholeRun('compare', compareArgs);
  const report = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'comparison.json'), 'utf8').replaceAll(dir, '<out>'));
  assert.deepEqual(report(out), report(whole));
  assert.deepEqual(locksUnder(out), []);
});

// ---- a model is its weights' content ----

function copyModel(name: string): string {
  const dir = path.join(work, name);
  fs.cpSync(QWEN2, dir, { recursive: true });
  return dir;
}

/** SHA-256 over the files' SHA-256s, computed here from their bytes: what weightsSha256 must agree with. */
function independentSha256(dir: string): string {
  const hash = crypto.createHash('sha256');
  for (const file of openWeights(dir).files) hash.update(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
  return hash.digest('hex');
}

async function loaded(dir: string): Promise<{ sha256: string; cache: string }> {
  const model = Model.load(dir, { device: 'cpu' });
  await model.dispose();
  return { sha256: model.weightsSha256, cache: model.weights.dir };
}

test('weights replaced in place (same size, mtime restored) are a new model: a new weight cache, and the eval resume is refused naming the weights', async () => {
  const dir = copyModel('replaced');
  const file = path.join(dir, 'model.safetensors');
  // whole seconds, which utimes sets exactly: the replaced file's path, size and mtime are then the old ones to the bit
  const mtime = new Date(1_700_000_000_000);
  fs.utimesSync(file, mtime, mtime);
  const before = await loaded(dir);
  const out = path.join(work, 'replaced-eval');
  const args = ['eval', '--model', dir, '--data', SAMPLE, '--out', out, '--device', 'cpu', '--max-items', '2', '--max-new-tokens', '6'];
  assert.equal((await pinpoint(args)).code, 0);

  const { size } = fs.statSync(file);
  const bytes = fs.readFileSync(file);
  const norm = openWeights(dir).tensors.get('model.norm.weight')!;
  assert.equal(norm.dtype, 'F32');
  for (let at = norm.byteOffset; at < norm.byteOffset + norm.byteLength; at += 4) bytes.writeFloatLE(0.5, at);
  fs.writeFileSync(file, bytes);
  fs.utimesSync(file, mtime, mtime);
  assert.equal(fs.statSync(file).size, size);
  assert.equal(fs.statSync(file).mtimeMs, mtime.getTime());

  const after = await loaded(dir);
  assert.equal(after.sha256, independentSha256(dir));
  assert.notEqual(after.sha256, before.sha256);
  assert.notEqual(after.cache, before.cache, 'the old weights are not served from the cache');
  const resumed = await pinpoint(args);
  assert.equal(resumed.code, 1);
  const expected = `${out} holds results of a run with other settings (the weights of ${dir} (SHA-256 ${after.sha256} now, ${before.sha256} in summary.json) differ), so it cannot be resumed`;
  assert.ok(resumed.stderr.includes(expected), resumed.stderr);
});

test('a moved model folder keeps its hash cache entry (not rewritten, and trusted) and its weight cache', async () => {
  const from = copyModel('moved-from');
  const before = await loaded(from);
  const entry = sha256CacheEntry(path.join(from, 'model.safetensors'));
  const entryStat = fs.statSync(entry, { bigint: true });
  const to = path.join(work, 'moved-to');
  fs.renameSync(from, to);

  const after = await loaded(to);
  assert.equal(after.sha256, before.sha256);
  assert.equal(after.cache, before.cache, 'the weight cache is found by content, wherever the folder is');
  assert.equal(sha256CacheEntry(path.join(to, 'model.safetensors')), entry);
  const statAfter = fs.statSync(entry, { bigint: true });
  assert.deepEqual([statAfter.ino, statAfter.mtimeNs], [entryStat.ino, entryStat.mtimeNs], 'the entry was not written again');

  // an entry that still matches the file is what the hash is read from: the file is not read again
  const planted = 'a'.repeat(64);
  fs.writeFileSync(entry, JSON.stringify({ ...readJson<object>(entry), sha256: planted }));
  assert.equal(cachedSha256(path.join(to, 'model.safetensors')), planted);
});

test('a damaged hash cache entry, or one for another state of the file, is recomputed, not trusted', () => {
  const dir = copyModel('damaged-entry');
  const file = path.join(dir, 'model.safetensors');
  const expected = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  assert.equal(cachedSha256(file), expected);
  const entry = sha256CacheEntry(file);
  const valid = readJson<{ key: Record<string, string>; sha256: string }>(entry);
  const damaged = [
    '{"format": "pinpoint-sha256/1", "sha256": "',
    JSON.stringify({ ...valid, sha256: 'not a hash' }),
    JSON.stringify({ ...valid, sha256: 'b'.repeat(64), key: { ...valid.key, ctimeNs: '1' } }),
    'null',
  ];
  for (const text of damaged) {
    fs.writeFileSync(entry, text);
    assert.equal(cachedSha256(file), expected, `trusted: ${text}`);
    assert.deepEqual(readJson(entry), valid, `not rewritten after: ${text}`);
  }
});

test("one content identity everywhere: the model, summary.json, heads.json and the tuned checkpoint's base agree with the files' bytes", async () => {
  const expected = independentSha256(QWEN2);
  assert.equal(weightsSha256(openWeights(QWEN2)), expected);
  assert.equal((await loaded(QWEN2)).sha256, expected);
  const summary = readJson<Summary>(path.join(await wholeRun('eval', evalArgs), SUMMARY_FILE));
  assert.equal(summary.settings.modelWeightsSha256, expected);
  assert.equal(summary.settings.judgeWeightsSha256, null);
  assert.equal(readJson<HeadsFile>(path.join(await wholeRun('locate', locateArgs), 'heads.json')).model.weightsSha256, expected);
  const manifest = readJson<{ base: { weightsSha256: string } }>(path.join(await wholeRun('tune', tuneArgs), 'step-6', 'pinpoint.json'));
  assert.equal(manifest.base.weightsSha256, expected);
});
