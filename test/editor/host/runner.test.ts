import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';
import type { EvaluateResult } from '../../../src/protocol/jobs';
import { evaluationFolders, lineCount, pinpoint, waitFor, workspaceFile } from './pinpoint';

const ITEMS = 40;

suite('the runner process', () => {
  test("Stop Job stops the runner's job after the batch it is on, and the runner lives on", async () => {
    const api = await pinpoint();
    // a long file, one item per batch, so that the job is surely running when stopped
    const sample = fs.readFileSync(workspaceFile('sample-eval.jsonl').fsPath, 'utf8').trim().split('\n');
    const lines = Array.from({ length: ITEMS }, (_, i) => JSON.stringify({ ...JSON.parse(sample[i % sample.length]), id: `item-${i}` }));
    const file = workspaceFile('long-eval.jsonl');
    fs.writeFileSync(file.fsPath, `${lines.join('\n')}\n`);
    await vscode.workspace.getConfiguration('pinpoint').update('evaluation.batchSize', 1, vscode.ConfigurationTarget.Workspace);
    const pid = (await api.runner.info()).pid;
    try {
      const running = vscode.commands.executeCommand<EvaluateResult | undefined>('pinpoint.runEvaluation', file);
      const results = await waitFor(
        'the first results of long-eval.jsonl',
        () => {
          const found = evaluationFolders('long-eval')
            .map((out) => path.join(out, 'results.jsonl'))
            .find((f) => lineCount(f) >= 1);
          return found;
        },
        60_000,
      );
      assert.equal(api.jobs.current, 'evaluating long-eval.jsonl');
      await vscode.commands.executeCommand('pinpoint.stopJob');
      assert.equal(await running, undefined, 'a stopped job has no result');
      const done = lineCount(results);
      assert.ok(done >= 1 && done < ITEMS, `${done} of ${ITEMS} items ran`);
      const summary = JSON.parse(fs.readFileSync(path.join(path.dirname(results), 'summary.json'), 'utf8')) as { status: string };
      assert.equal(summary.status, 'running', 'the run did not complete');
      assert.equal(api.jobs.current, undefined);
      assert.equal((await api.runner.info()).pid, pid, 'cancelled, not killed');
      // the items it finished are kept: nothing more is written once it stopped
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(lineCount(results), done);
    } finally {
      await vscode.workspace.getConfiguration('pinpoint').update('evaluation.batchSize', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('a killed runner is restarted and the user is told why', async () => {
    const api = await pinpoint();
    const pid = (await api.runner.info()).pid;
    const told = new Promise<string>((resolve) => api.runner.onDidRestart(resolve));
    process.kill(pid, 'SIGKILL');
    const message = await told;
    assert.match(message, /^Pinpoint runner stopped \(exit code null \/ signal SIGKILL\): .*It was restarted\.$/);
    const restarted = await api.runner.info();
    assert.notEqual(restarted.pid, pid);
    // and it works: a job loads the model again and runs
    const result = await vscode.commands.executeCommand<EvaluateResult | undefined>(
      'pinpoint.rerunItem',
      workspaceFile('sample-eval.jsonl'),
      'moons',
    );
    assert.equal(result?.summary.status, 'complete');
  });
});
