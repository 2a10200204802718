import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Services } from '../../../src/extension/services';

/** The extension under test and the workspace the stage opened, for the extension-host tests. */

export async function pinpoint(): Promise<Services> {
  const extension = vscode.extensions.getExtension<Services>('pinpoint-dev.pinpoint');
  assert.ok(extension, 'the Pinpoint extension is loaded');
  return extension.activate();
}

export function workspaceFile(name: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the stage opens a workspace folder');
  return vscode.Uri.joinPath(folder.uri, name);
}

export async function open(name: string): Promise<vscode.TextDocument> {
  const document = await vscode.workspace.openTextDocument(workspaceFile(name));
  await vscode.window.showTextDocument(document);
  return document;
}

/** Polls until `probe` returns a value, or fails naming what was awaited. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function lineCount(file: string): number {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '').length
    : 0;
}

/** The output folders of the workspace's evaluations of `stem`. */
export function evaluationFolders(stem: string): string[] {
  const root = workspaceFile('.pinpoint/evaluations').fsPath;
  return fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((d) => d.startsWith(`${stem}-`))
        .map((d) => path.join(root, d))
    : [];
}
