import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { EvaluateRequest, type EvaluateParams } from '../../../src/protocol/jobs';
import { RuntimeInfoRequest } from '../../../src/protocol/protocol';
import { RunnerProcess } from '../../../src/extension/runnerProcess';
import { tempDir } from '../../fixtures/paths';

/** The extension's runner process against stand-in runners: one that never answers, one that fails as it starts. */

const work = tempDir('runner-process');
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** A runner that reads its requests, echoing them to stderr, and answers none. */
const SILENT = script('silent.js', `process.stdin.on('data', (chunk) => process.stderr.write(chunk.toString().replace(/\\r?\\n/g, ' ') + '\\n'));`);

function script(name: string, source: string): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, source);
  return file;
}

interface Started {
  runner: RunnerProcess;
  lines: string[];
  stopped: Promise<string>;
}

function start(file: string, roots: string[] = [work]): Started {
  const lines: string[] = [];
  let stopped!: (how: string) => void;
  const runner = new RunnerProcess(
    { node: process.execPath, script: file, roots },
    {
      onStderrLine: (line) => lines.push(line),
      onStopped: (how) => stopped(how),
    },
  );
  return { runner, lines, stopped: new Promise((resolve) => (stopped = resolve)) };
}

test('a plain request the runner does not answer fails after its time, naming it, and is cancelled in the runner', async () => {
  const { runner, lines } = start(SILENT);
  try {
    const started = Date.now();
    await assert.rejects(
      runner.request(RuntimeInfoRequest.method, (token) => runner.connection.sendRequest(RuntimeInfoRequest, token), { within: 300 }),
      { message: 'the Pinpoint runner did not answer runtime/info within 0.3 s, so the request was cancelled' },
    );
    assert.ok(Date.now() - started < 2_000);
    await waitFor(() => lines.some((line) => line.includes('"method":"$/cancelRequest"')), 'the runner told to cancel it');
  } finally {
    runner.stop();
  }
});

test('a request without a time to answer in (a job) waits as long as it takes, until its token cancels it', async () => {
  const { runner, lines } = start(SILENT);
  try {
    const source = new CancellationTokenSource();
    const params = { job: 'j' } as EvaluateParams;
    const job = runner.request(EvaluateRequest.method, (token) => runner.connection.sendRequest(EvaluateRequest, params, token), {
      token: source.token,
    });
    const outcome = await Promise.race([
      job.then(
        () => 'answered',
        () => 'failed',
      ),
      sleep(1_000, 'waiting'),
    ]);
    assert.equal(outcome, 'waiting');
    source.cancel();
    await waitFor(() => lines.some((line) => line.includes('"method":"$/cancelRequest"')), 'the runner told to cancel it');
  } finally {
    runner.stop();
  }
});

test('a runner that exits non-zero reports how, with its last words on stderr', async () => {
  const failing = script(
    'failing.js',
    `process.stderr.write('starting\\npinpoint serve: malformed JSON-RPC frame: a message header without Content-Length\\n\\n'); process.exit(1);`,
  );
  const { runner, stopped } = start(failing);
  assert.equal(await stopped, 'exit code 1 / signal null');
  assert.equal(runner.lastStderrLine, 'pinpoint serve: malformed JSON-RPC frame: a message header without Content-Length');
});

test('the roots reach the runner as --root options', async () => {
  const echo = script('echo-args.js', `process.stderr.write(JSON.stringify(process.argv.slice(2)) + '\\n');`);
  const { runner, stopped } = start(echo, ['/models/qwen', 'C:\\work space']);
  assert.equal(await stopped, 'exit code 0 / signal null');
  assert.deepEqual(JSON.parse(runner.lastStderrLine), ['serve', '--root', '/models/qwen', '--root', 'C:\\work space']);
});

async function waitFor(done: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !done(); waited += 50) {
    if (waited > 5_000) assert.fail(`${what} did not happen within 5 s`);
    await sleep(50);
  }
}
