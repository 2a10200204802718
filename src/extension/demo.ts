import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Services } from './services';
import { outputFolder } from './settings';

/**
 * The embedded demo: a model shipped with the extension, a sample evaluation file and training conversations for
 * pinpoint tuning, all relative to the extension's folder. The editor tests still run it on the tiny random Qwen2
 * of the reference cases, whose answers are gibberish but on which every step runs; switching to the organism
 * (models/organism with its sample-eval.jsonl and tune.jsonl) is this one object, the matching lines of
 * .vscodeignore, and the editor tests' expectations.
 */
const DEMO = {
  model: '../shared/reference/qwen2',
  evaluation: 'test/fixtures/editor/sample-eval.jsonl',
  training: 'test/fixtures/editor/train.jsonl',
};

/**
 * Makes the demo model the workspace's model and its training data the tuning data, and opens a copy of the
 * sample evaluation file in the output folder (the extension's own files are not for editing).
 */
export async function openDemo(s: Services): Promise<vscode.TextEditor | undefined> {
  const file = (relative: string) => path.resolve(s.extensionUri.fsPath, relative);
  const missing = Object.values(DEMO).map(file).filter((f) => !fs.existsSync(f));
  if (missing.length) {
    void vscode.window.showErrorMessage(`Pinpoint: the demo is incomplete in this installation (missing ${missing.join(', ')}).`);
    return undefined;
  }
  const target = vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  const settings = vscode.workspace.getConfiguration('pinpoint');
  await settings.update('tuning.data', file(DEMO.training), target);
  const model = await s.models.load(file(DEMO.model));
  if (!model) return undefined;
  const copy = path.join(outputFolder(s.storageUri), 'demo', path.basename(DEMO.evaluation));
  if (!fs.existsSync(copy)) {
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    fs.copyFileSync(file(DEMO.evaluation), copy);
  }
  return vscode.window.showTextDocument(vscode.Uri.file(copy));
}
