import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Device, Dtype, LoadModelParams, ModelInfo } from '../protocol/protocol';
import { RunnerClient } from './runnerClient';
import { StatusBar } from './statusBar';

let runner: RunnerClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Pinpoint Runner');
  const statusBar = new StatusBar();
  runner = new RunnerClient(context.asAbsolutePath('dist/runner.js'), output);
  const client = runner;
  context.subscriptions.push(
    output,
    statusBar,
    // a restarted runner holds no model
    client.onDidRestart(() => statusBar.setModel(undefined)),
    vscode.commands.registerCommand('pinpoint.selectModel', () => selectModel(client, statusBar)),
    vscode.commands.registerCommand('pinpoint.showRunnerInfo', () => showRunnerInfo(client)),
  );
}

export function deactivate(): void {
  runner?.dispose();
  runner = undefined;
}

async function selectModel(client: RunnerClient, statusBar: StatusBar): Promise<void> {
  const dir = await pickModelFolder();
  if (!dir) return;
  const model = await loadModel(client, statusBar, dir);
  if (model) await rememberModel(dir);
}

async function loadModel(client: RunnerClient, statusBar: StatusBar, dir: string): Promise<ModelInfo | undefined> {
  statusBar.setBusy(true);
  try {
    const model = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Pinpoint: loading ${path.basename(dir)}…`, cancellable: false },
      () => client.loadModel(loadParams(dir)),
    );
    statusBar.setModel(model);
    return model;
  } catch (err) {
    // the runner drops its old model before loading a new one, so a failed load leaves none
    statusBar.setModel(undefined);
    void vscode.window.showErrorMessage(`Pinpoint could not load the model: ${errorMessage(err)}`);
    return undefined;
  } finally {
    statusBar.setBusy(false);
  }
}

async function pickModelFolder(): Promise<string | undefined> {
  const current = vscode.workspace.getConfiguration('pinpoint').get<string>('model');
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Load Model',
    title: 'Choose a Hugging Face checkpoint folder',
    defaultUri: current ? vscode.Uri.file(current) : undefined,
  });
  return picked?.[0]?.fsPath;
}

/** The settings' enums are not enforced on what users type, but the runner checks them and says what is wrong. */
function loadParams(dir: string): LoadModelParams {
  const settings = vscode.workspace.getConfiguration('pinpoint');
  return { dir, device: settings.get<Device>('device', 'auto'), dtype: settings.get<Dtype>('dtype', 'float32') };
}

/** The model belongs to the workspace; with no folder open there is no workspace setting, so it goes to the user's. */
function rememberModel(dir: string): Thenable<void> {
  const target = vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  return vscode.workspace.getConfiguration('pinpoint').update('model', dir, target);
}

async function showRunnerInfo(client: RunnerClient): Promise<void> {
  try {
    const info = await client.info();
    const cuda = info.cudaProviderInstalled ? 'CUDA provider installed' : 'CUDA provider not installed (CPU only)';
    void vscode.window.showInformationMessage(
      `Pinpoint runner ${info.runnerVersion} · ONNX Runtime ${info.onnxruntimeVersion} · ${cuda} · Node ${info.node}`,
    );
  } catch (err) {
    void vscode.window.showErrorMessage(`Pinpoint runner: ${errorMessage(err)}`);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
