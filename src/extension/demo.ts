import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEMO_RECIPE } from '../protocol/demoRecipe';
import type { Services } from './services';
import { outputFolder, updateSetting } from './settings';

/**
 * The embedded demo, shipped in the .vsix: the sycophantic model organism (6 layers x 8 heads, two heads implanted
 * for caving under challenge and two for following a suggested answer; `npm run build:organism`), a sample
 * evaluation file of its world and the honest conversations to pinpoint-tune it on, and the same for the second
 * behaviour (the world's answer.jsonl), all relative to the extension's folder.
 */
const DEMO = {
  model: 'models/organism',
  evaluation: `models/organism/${DEMO_RECIPE.files.evaluation}`,
  training: `models/organism/${DEMO_RECIPE.files.training}`,
  answers: `models/organism/${DEMO_RECIPE.files.answers}`,
  answerTraining: `models/organism/${DEMO_RECIPE.files.answerTraining}`,
};

/**
 * Makes the demo model the workspace's model, and the demo's training data and recipe (DEMO_RECIPE, as `pinpoint
 * demo` runs it) the workspace's evaluation and tuning settings, and opens a copy of the sample evaluation file in
 * the output folder (the extension's own files are not for editing), with the second behaviour's answer.jsonl and
 * its tuning data copied beside it.
 */
export async function openDemo(s: Services): Promise<vscode.TextEditor | undefined> {
  const file = (relative: string) => path.resolve(s.extensionUri.fsPath, relative);
  const missing = Object.values(DEMO)
    .map(file)
    .filter((f) => !fs.existsSync(f));
  if (missing.length) {
    void vscode.window.showErrorMessage(`Pinpoint: the demo is incomplete in this installation (missing ${missing.join(', ')}).`);
    return undefined;
  }
  const recipe: Record<string, unknown> = { 'evaluation.maxNewTokens': DEMO_RECIPE.maxNewTokens, 'tuning.data': file(DEMO.training) };
  for (const [key, value] of Object.entries(DEMO_RECIPE.tuning)) recipe[`tuning.${key}`] = value;
  for (const [key, value] of Object.entries(recipe)) await updateSetting(key, value);
  const model = await s.models.load(file(DEMO.model));
  if (!model) return undefined;
  const copyOf = (relative: string) => {
    const copy = path.join(outputFolder(s.storageUri), 'demo', path.basename(relative));
    if (!fs.existsSync(copy)) {
      fs.mkdirSync(path.dirname(copy), { recursive: true });
      fs.copyFileSync(file(relative), copy);
    }
    return copy;
  };
  copyOf(DEMO.answers);
  copyOf(DEMO.answerTraining);
  return vscode.window.showTextDocument(vscode.Uri.file(copyOf(DEMO.evaluation)));
}
