import * as vscode from 'vscode';
import type { Services } from './services';

/**
 * The evaluation file a command acts on: the one it was given (CodeLens, tests), else the active editor's, else
 * the one evaluated last. An open file is saved first, since the runner reads it from disk; the user chose it, so
 * the runner may read it wherever it is.
 */
export async function evaluationTarget(s: Services, given?: vscode.Uri): Promise<string | undefined> {
  const file = await chosenFile(s, given);
  if (file) await s.runner.addRoots([file]);
  return file;
}

async function chosenFile(s: Services, given?: vscode.Uri): Promise<string | undefined> {
  const document = given
    ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === given.toString())
    : vscode.window.activeTextEditor?.document;
  if (document && document.uri.fsPath.endsWith('.jsonl')) {
    if (document.isDirty) await document.save();
    return document.uri.fsPath;
  }
  if (given) return given.fsPath;
  const last = s.runs.evaluatedFiles().at(-1);
  if (last) return last;
  void vscode.window.showWarningMessage('Pinpoint: open an evaluation file (JSON Lines, .jsonl) first, or Open Demo for a sample one.');
  return undefined;
}
