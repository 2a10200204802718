import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';
import { pinpoint } from './pinpoint';

suite('commands', () => {
  test('every command the manifest contributes is registered', async () => {
    await pinpoint();
    const contributed = (
      vscode.extensions.getExtension('pinpoint-dev.pinpoint')!.packageJSON as { contributes: { commands: { command: string }[] } }
    ).contributes.commands.map((c) => c.command);
    assert.ok(contributed.length >= 13, contributed.join(', '));
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      contributed.filter((c) => !registered.has(c)),
      [],
    );
    for (const command of [
      'pinpoint.openDemo',
      'pinpoint.runEvaluation',
      'pinpoint.locateHeads',
      'pinpoint.knockout',
      'pinpoint.tuneHeads',
      'pinpoint.compare',
      'pinpoint.exportModel',
      'pinpoint.stopJob',
      'pinpoint.selectModel',
    ]) {
      assert.ok(contributed.includes(command), command);
    }
  });

  test('the walkthrough links registered commands and shows media that exist', async () => {
    const extension = vscode.extensions.getExtension('pinpoint-dev.pinpoint')!;
    type Step = { id: string; description: string; media: { markdown: string } };
    const [walkthrough] = (extension.packageJSON as { contributes: { walkthroughs: { steps: Step[] }[] } }).contributes.walkthroughs;
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      walkthrough.steps.map((s) => s.id),
      ['demo', 'evaluate', 'locate', 'knockout', 'tune', 'compare'],
    );
    for (const step of walkthrough.steps) {
      const links = [...step.description.matchAll(/\(command:([\w.]+)\)/g)].map(([, command]) => command);
      assert.equal(links.length, 1, step.id);
      assert.ok(registered.has(links[0]), links[0]);
      assert.ok(fs.existsSync(path.join(extension.extensionPath, step.media.markdown)), step.media.markdown);
    }
  });
});
