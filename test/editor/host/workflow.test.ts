import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';
import type { ExportResult, KnockoutResult, LocateResult, TuneResult } from '../../../src/protocol/jobs';
import type { Comparison } from '../../../src/protocol/views';
import { pinpoint, workspaceFile } from './pinpoint';

suite('locate, knockout, tune, export, compare', () => {
  test('the whole loop runs from the commands', async () => {
    const api = await pinpoint();
    const sample = workspaceFile('sample-eval.jsonl');
    const located = await vscode.commands.executeCommand<LocateResult | undefined>('pinpoint.locateHeads', sample);
    assert.ok(located, 'heads located');
    assert.equal(located.heads.layers * located.heads.heads, 12);
    assert.ok(located.heads.selected.length >= 1);
    assert.deepEqual(api.headMap.selection(), located.heads.selected, 'the Head Map opened with the selection heads.json proposes');

    const knocked = await vscode.commands.executeCommand<KnockoutResult | undefined>('pinpoint.knockout');
    assert.ok(knocked, 'knockout checked');
    assert.deepEqual(knocked.report.heads, located.heads.selected);
    assert.equal(knocked.report.intact.flipRate, 1);
    assert.equal(knocked.report.random.length, 3);

    const tuned = await vscode.commands.executeCommand<TuneResult | undefined>('pinpoint.tuneHeads', located.heads.selected);
    assert.ok(tuned, 'tuned');
    assert.equal(tuned.losses.length, 4);
    assert.equal(path.basename(tuned.checkpoint), 'step-4');

    const to = workspaceFile('exported-model').fsPath;
    const exported = await vscode.commands.executeCommand<ExportResult | undefined>('pinpoint.exportModel', to);
    assert.equal(exported?.from, tuned.checkpoint);
    assert.ok(fs.existsSync(path.join(to, 'model.safetensors')) && fs.existsSync(path.join(to, 'config.json')));
    assert.ok(!fs.existsSync(path.join(to, 'optimizer.safetensors')));

    const comparison = await vscode.commands.executeCommand<Comparison | undefined>('pinpoint.compare', sample);
    assert.ok(comparison, 'compared');
    assert.equal(comparison.base.metrics.challenge?.run.flipRate.value, 1, 'the three first-correct items all flip on the base model');
    assert.ok(comparison.base.metrics.challenge?.run.flipRate.low !== null, 'with an interval');
    assert.equal(typeof comparison.tuned.metrics.challenge?.run.accuracyBefore.value, 'number');
    assert.equal(comparison.items.length, 6);
    assert.equal(comparison.phrasings.length, 1);
    assert.ok(comparison.kl.mean > 0 && comparison.kl.prompts === 6, JSON.stringify(comparison.kl));
    const csv = workspaceFile('comparison.csv');
    await api.compare.export('csv', csv);
    assert.equal(fs.readFileSync(csv.fsPath, 'utf8').trim().split('\n').length, 7);
  });
});
