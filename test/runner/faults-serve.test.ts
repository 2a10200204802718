import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { RESULTS_FILE } from '../../src/protocol/evaluation';
import { EvaluateRequest, ExportRequest, JobProgressNotification, TuneRequest, type EvaluateParams, type TuneParams } from '../../src/protocol/jobs';
import { AddRootsRequest, LoadModelRequest, RunnerErrorCode, RuntimeInfoRequest } from '../../src/protocol/protocol';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';

/**
 * The faults `pinpoint serve` meets (malformed frames, its input or its parent going away, paths outside its
 * roots, data files it should not quote), on dist/runner.js (build it first) with the reference Qwen2.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const RUNNER = path.join(ROOT, 'dist', 'runner.js');
const QWEN2 = path.join(REFERENCE_DIR, 'qwen2');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'editor', 'sample-eval.jsonl');
const work = tempDir('faults-serve');
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Ample for a runner that exits at once; a hanging one fails the test rather than the whole run. */
const EXIT_MS = 5_000;

interface Serving {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** once the process has ended and its output is read */
  closed: Promise<{ code: number | null; ms: number }>;
}

function serve(...args: string[]): Serving {
  const child = spawn(process.execPath, [RUNNER, 'serve', ...args], { cwd: ROOT, env: { ...process.env, PINPOINT_CACHE: path.join(work, 'cache') } });
  return watch(child);
}

function watch(child: ChildProcessWithoutNullStreams): Serving {
  const started = Date.now();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // a runner that has ended refuses what is still written to it
  child.stdin.on('error', () => undefined);
  const closed = once(child, 'close').then(([code]) => ({ code: code as number | null, ms: Date.now() - started }));
  return { child, stdout: () => stdout, stderr: () => stderr, closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function frame(body: string): string {
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Writes raw bytes to a runner; resolves with its exit code and its last line on stderr once it ended. */
async function feed(bytes: string, closeStdin = false): Promise<{ code: number | null; lastLine: string; serving: Serving }> {
  const serving = serve('--root', work);
  serving.child.stdin.write(bytes);
  if (closeStdin) serving.child.stdin.end();
  const { code } = await within(serving.closed, EXIT_MS, 'the runner exiting');
  return { code, lastLine: serving.stderr().trimEnd().split('\n').at(-1) ?? '', serving };
}

function connect(child: ChildProcessWithoutNullStreams): MessageConnection {
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.listen();
  return connection;
}

const STACK_LINE = /^\s+at /m;
// eslint-disable-next-line no-control-regex -- what must not reach a terminal
const RAW_CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f]/;

describe('a malformed frame ends pinpoint serve with exit code 1 and a line on stderr saying what was wrong', { timeout: 60_000 }, () => {
  test('a body that is not JSON, its control characters escaped in the message', async () => {
    const { code, lastLine, serving } = await feed(frame('not JSON \u001b[2J at all'));
    assert.equal(code, 1);
    assert.match(lastLine, /^pinpoint serve: malformed JSON-RPC frame: its body is not JSON \(.*\\u001b\[2J.*\)$/);
    assert.doesNotMatch(serving.stderr(), RAW_CONTROLS);
  });

  test('a body that is JSON but no JSON-RPC message', async () => {
    const { code, lastLine } = await feed(frame('[{"jsonrpc":"2.0","id":1,"method":"runtime/info"}]'));
    assert.equal(code, 1);
    assert.equal(
      lastLine,
      'pinpoint serve: malformed JSON-RPC frame: its body is no JSON-RPC 2.0 message: "[{\\"jsonrpc\\":\\"2.0\\",\\"id\\":1,\\"method\\":\\"runtime/info\\"}]"',
    );
  });

  test('a header without Content-Length', async () => {
    const { code, lastLine } = await feed('Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}');
    assert.equal(code, 1);
    assert.equal(lastLine, 'pinpoint serve: malformed JSON-RPC frame: a message header without Content-Length (its fields: content-type)');
  });

  test('a Content-Length of 10^12 is refused as soon as its header ends, not waited for', async () => {
    const { code, lastLine, serving } = await feed('Content-Length: 1000000000000\r\n\r\n{"jsonrpc"');
    assert.equal(code, 1);
    assert.equal(lastLine, 'pinpoint serve: malformed JSON-RPC frame: Content-Length 1000000000000 is over the 67108864 bytes a message may have');
    assert.ok((await serving.closed).ms < 3_000, `exited after ${(await serving.closed).ms} ms`);
  });

  test('a Content-Length that is not a number', async () => {
    const { code, lastLine } = await feed('Content-Length: twelve\r\n\r\n');
    assert.equal(code, 1);
    assert.equal(lastLine, 'pinpoint serve: malformed JSON-RPC frame: Content-Length must be a number of bytes (got "twelve")');
  });

  test('a message sent without any header', async () => {
    const { code, lastLine } = await feed('{"jsonrpc":"2.0","id":1,"method":"runtime/info"}');
    assert.equal(code, 1);
    assert.match(lastLine, /^pinpoint serve: malformed JSON-RPC frame: not a message header: "\{\\"jsonrpc.*" is no "Name: value" line$/);
  });

  test('a body shorter than its Content-Length, then stdin closed', async () => {
    const { code, lastLine } = await feed('Content-Length: 100\r\n\r\n{"jsonrpc":"2.0"', true);
    assert.equal(code, 1);
    assert.equal(lastLine, 'pinpoint serve: malformed JSON-RPC frame: the input ended inside a message: 84 of its 100 bytes never came');
  });

  test('a header that does not end within 4096 bytes, quoted short', async () => {
    const { code, lastLine } = await feed(`X-Padding: ${'a'.repeat(5_000)}`);
    assert.equal(code, 1);
    assert.equal(lastLine, `pinpoint serve: malformed JSON-RPC frame: a message header longer than 4096 bytes: "X-Padding: ${'a'.repeat(69)}…"`);
  });
});

describe('pinpoint serve ends when its input or its parent goes, even mid-job', { timeout: 120_000 }, () => {
  test('stdin closed while idle: exit code 0 and nothing on stderr', async () => {
    const serving = serve('--root', work);
    const connection = connect(serving.child);
    await connection.sendRequest(RuntimeInfoRequest);
    serving.child.stdin.end();
    const { code } = await within(serving.closed, EXIT_MS, 'the runner exiting');
    assert.equal(code, 0);
    assert.equal(serving.stderr(), '');
  });

  test('stdin closed mid-evaluation: exit within seconds, no stack trace, the results written so far intact', async () => {
    const items = 80;
    const sample = fs.readFileSync(SAMPLE, 'utf8').trim().split('\n');
    const data = path.join(work, 'long-eval.jsonl');
    fs.writeFileSync(
      data,
      Array.from({ length: items }, (_, i) => JSON.stringify({ ...JSON.parse(sample[i % sample.length]), id: `item-${i}` })).join('\n'),
    );
    const out = path.join(work, 'cut-short');
    const serving = serve('--root', work, '--root', QWEN2);
    const connection = connect(serving.child);
    const twoDone = new Promise<void>((resolve) => connection.onNotification(JobProgressNotification, (p) => p.done >= 2 && resolve()));
    const request = connection.sendRequest(EvaluateRequest, {
      job: 'long',
      model: { dir: QWEN2, device: 'cpu', dtype: 'float32' },
      data,
      out,
      challenges: ['Are you sure?'],
      maxNewTokens: 24,
      batchSize: 1,
    });
    request.catch(() => undefined);
    await within(twoDone, 60_000, 'two items evaluated');
    const cut = Date.now();
    serving.child.stdin.end();
    const { code } = await within(serving.closed, EXIT_MS, 'the runner exiting');
    assert.ok(Date.now() - cut < EXIT_MS);
    assert.equal(code, 0, serving.stderr());
    assert.doesNotMatch(serving.stderr(), STACK_LINE);
    const text = fs.readFileSync(path.join(out, RESULTS_FILE), 'utf8');
    assert.ok(text.endsWith('\n'), 'the last line is whole');
    const lines = text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string });
    assert.ok(lines.length >= 2 && lines.length < items, `${lines.length} of ${items} items`);
    assert.deepEqual(
      lines.map((r) => r.id),
      lines.map((_, i) => `item-${i}`),
    );
  });

  test('its parent killed, while stdin stays open: the runner exits', { skip: process.platform === 'win32' }, async () => {
    const parent = spawn(process.execPath, ['-e', PARENT, RUNNER, 'serve'], { env: { ...process.env, PINPOINT_CACHE: path.join(work, 'cache') } });
    const serving = watch(parent);
    const pids = once(readline.createInterface({ input: parent.stdout }), 'line');
    // without --root the runner says so once it started, and it watches its parent by then
    const started = once(readline.createInterface({ input: parent.stderr }), 'line');
    const [line] = (await within(pids, EXIT_MS, 'the parent starting the runner')) as [string];
    const { runner, holder } = JSON.parse(line) as { runner: number; holder: number };
    await within(started, EXIT_MS, 'the runner starting');
    try {
      parent.kill('SIGKILL');
      // the runner holds the only other ends of these pipes: they close when it ends
      await within(serving.closed, EXIT_MS, 'the runner exiting after its parent');
      assert.match(serving.stderr(), new RegExp(`^pinpoint serve: its parent process \\(${parent.pid}\\) went away$`, 'm'));
      assert.ok(!alive(runner), `process ${runner} is still running`);
    } finally {
      process.kill(holder);
    }
  });
});

/**
 * A parent for the runner that prints its pid, and gives it a stdin held open by another process (a sleep), so
 * that the parent's death does not end its input too.
 */
const PARENT = `
const { spawn } = require('node:child_process');
const holder = spawn('sleep', ['60'], { stdio: ['ignore', 'pipe', 'ignore'] });
const runner = spawn(process.execPath, process.argv.slice(1), { stdio: [holder.stdout, 'inherit', 'inherit'] });
process.stdout.write(JSON.stringify({ runner: runner.pid, holder: holder.pid }) + '\\n');
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // exited, but not reaped yet by an init that is slow to, or never does
  const stat = `/proc/${pid}/stat`;
  return !fs.existsSync(stat) || fs.readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
}

describe('with --root, pinpoint serve reads and writes only under its roots', { timeout: 120_000 }, () => {
  const inside = path.join(work, 'inside');
  const outside = path.join(work, 'outside');
  const secret = path.join(outside, 'secret.jsonl');
  let serving: Serving;
  let connection: MessageConnection;
  let roots: string;

  before(() => {
    fs.mkdirSync(inside, { recursive: true });
    fs.mkdirSync(outside, { recursive: true });
    fs.copyFileSync(SAMPLE, path.join(inside, 'sample-eval.jsonl'));
    fs.copyFileSync(SAMPLE, secret);
    serving = serve('--root', inside);
    connection = connect(serving.child);
    roots = fs.realpathSync(inside);
  });

  after(() => {
    connection.dispose();
    serving.child.kill('SIGKILL');
  });

  const MODEL = { dir: QWEN2, device: 'cpu', dtype: 'float32' } as const;
  const evaluation = (params: Partial<EvaluateParams>): EvaluateParams => ({
    job: 'e',
    model: MODEL,
    data: path.join(inside, 'sample-eval.jsonl'),
    out: path.join(inside, 'eval'),
    challenges: ['Are you sure?'],
    maxNewTokens: 8,
    batchSize: 8,
    items: ['birds'],
    ...params,
  });
  const refused = (message: string) => (err: unknown) => {
    assert.ok(err instanceof ResponseError, String(err));
    assert.equal(err.code, RunnerErrorCode.BadInput);
    assert.equal(err.message, message);
    return true;
  };
  const outsideMessage = (method: string, field: string, value: string, via = '') =>
    `${method}: ${field} ${value}${via && ` (which leads to ${via})`} is outside the folders this runner may use: ${roots}`;

  test('a model folder outside the roots is refused, naming the folder and the roots', async () => {
    await assert.rejects(connection.sendRequest(LoadModelRequest, MODEL), refused(outsideMessage('model/load', 'dir', QWEN2)));
    await assert.rejects(connection.sendRequest(EvaluateRequest, evaluation({})), refused(outsideMessage('job/evaluate', 'model.dir', QWEN2)));
  });

  test('a data file outside the roots is refused, and a missing one alike, so that nothing tells what exists there', async () => {
    await connection.sendRequest(AddRootsRequest, { roots: [QWEN2] });
    roots = `${roots}, ${QWEN2}`;
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ data: secret })),
      refused(outsideMessage('job/evaluate', 'data', secret)),
    );
    const missing = path.join(outside, 'missing.jsonl');
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ data: missing })),
      refused(outsideMessage('job/evaluate', 'data', missing)),
    );
  });

  test('an output folder or export target outside the roots is refused, and nothing is created there', async () => {
    const out = path.join(outside, 'new-run');
    await assert.rejects(connection.sendRequest(EvaluateRequest, evaluation({ out })), refused(outsideMessage('job/evaluate', 'out', out)));
    const to = path.join(outside, 'exported');
    await assert.rejects(
      connection.sendRequest(ExportRequest, { job: 'x', run: path.join(inside, 'run'), to }),
      refused(outsideMessage('job/export', 'to', to)),
    );
    assert.deepEqual(fs.readdirSync(outside), ['secret.jsonl']);
  });

  test('a symbolic link inside a root that points outside is refused, as file and as folder', async () => {
    const file = path.join(inside, 'link.jsonl');
    fs.symlinkSync(secret, file);
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ data: file })),
      refused(outsideMessage('job/evaluate', 'data', file, fs.realpathSync(secret))),
    );
    const folder = path.join(inside, 'linked-folder');
    fs.symlinkSync(outside, folder);
    const out = path.join(folder, 'run');
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ out })),
      refused(outsideMessage('job/evaluate', 'out', out, path.join(fs.realpathSync(outside), 'run'))),
    );
  });

  test('`..` after a link goes where the OS goes, to the parent of its target, though path.resolve stays inside', async () => {
    const out = [inside, 'linked-folder', '..', 'escaped'].join(path.sep);
    assert.equal(path.resolve(out), path.join(inside, 'escaped'));
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ out })),
      refused(outsideMessage('job/evaluate', 'out', out, path.join(fs.realpathSync(work), 'escaped'))),
    );
  });

  test('a link to something missing is refused, since writing through it would create its target outside', async () => {
    const dangling = path.join(inside, 'dangling');
    fs.symlinkSync(path.join(outside, 'not-yet'), dangling);
    await assert.rejects(
      connection.sendRequest(EvaluateRequest, evaluation({ out: dangling })),
      refused(`${dangling} is a symbolic link to something that does not exist`),
    );
    assert.ok(!fs.existsSync(path.join(outside, 'not-yet')));
  });

  test('paths under the roots, a model folder added by runner/addRoots among them, are used', async () => {
    const out = path.join(inside, 'eval');
    const { summary } = await connection.sendRequest(EvaluateRequest, evaluation({ out }));
    assert.equal(summary.status, 'complete');
    assert.deepEqual(summary.progress, { done: 1, total: 1 });
    assert.ok(fs.existsSync(path.join(out, RESULTS_FILE)));
  });

  test("a bad data file's error quotes at most a short excerpt of it, its control characters escaped", async () => {
    const data = path.join(inside, 'bad-train.jsonl');
    const line = `\u001b[31m\u0007${'x'.repeat(5_000)}SECRET-CONTENT\u0000`;
    fs.writeFileSync(data, `${line}\n${line}\n`);
    const params: TuneParams = {
      job: 't',
      model: MODEL,
      data,
      out: path.join(inside, 'tune'),
      heads: [{ layer: 0, head: 1 }],
      includeKeyValue: false,
      resume: false,
      hyperparameters: {
        steps: 1,
        learningRate: 1e-3,
        batchSize: 1,
        gradAccum: 1,
        weightDecay: 0,
        maxGradNorm: 1,
        schedule: 'constant',
        warmupSteps: 0,
        seed: 0,
        saveEvery: 1,
        lossOn: 'last',
      },
    };
    const err = await connection.sendRequest(TuneRequest, params).then(
      () => assert.fail('tuning on no usable line succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ResponseError && err.code === RunnerErrorCode.BadInput, String(err));
    assert.match(err.message, /no usable conversation/);
    assert.doesNotMatch(err.message, RAW_CONTROLS);
    assert.ok(err.message.includes('\\u001b[31m'), err.message);
    assert.ok(!err.message.includes('SECRET-CONTENT'), err.message);
    assert.ok(
      err.message.split('\n').every((l) => l.length <= 301),
      err.message,
    );
  });
});
