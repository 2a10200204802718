import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ModelSpec } from '../protocol/jobs';
import type { Device, ModelInfo } from '../protocol/protocol';
import type { RunnerClient } from './runnerClient';
import { modelDir, modelSpec, rememberModel } from './settings';
import type { StatusBar } from './statusBar';

/**
 * The model the runner holds, as the status bar shows it. Jobs name their model and the runner loads it when it
 * holds another; loading it here first puts its shape and the device it actually runs on in the status bar.
 */
export class Models implements vscode.Disposable {
  /** what the runner holds, and on which device setting it was loaded */
  private loaded: { info: ModelInfo; device: Device } | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly runner: RunnerClient,
    private readonly statusBar: StatusBar,
  ) {
    // a restarted runner holds no model
    this.subscription = runner.onDidRestart(() => this.show(undefined, undefined));
  }

  /** The model folder of the settings, or undefined (the user is told what to do) when none is chosen. */
  selected(): string | undefined {
    const dir = modelDir();
    if (dir) return dir;
    void vscode.window.showWarningMessage('Pinpoint has no model yet.', 'Select Model…', 'Open Demo').then((choice) => {
      if (choice) void vscode.commands.executeCommand(choice === 'Open Demo' ? 'pinpoint.openDemo' : 'pinpoint.selectModel');
    });
    return undefined;
  }

  async ensureLoaded(spec: ModelSpec): Promise<ModelInfo> {
    const loaded = this.loaded;
    if (loaded && loaded.info.dir === path.resolve(spec.dir) && loaded.info.dtype === spec.dtype && loaded.device === spec.device) return loaded.info;
    this.statusBar.setBusy(true);
    try {
      const model = await this.runner.loadModel(spec);
      this.show(model, spec.device);
      return model;
    } catch (err) {
      // the runner drops its old model before loading a new one, so a failed load leaves none
      this.show(undefined, undefined);
      throw err;
    } finally {
      this.statusBar.setBusy(false);
    }
  }

  /** Tuning loads the model on its own, after the runner let go of the one it held; the status bar still names it. */
  released(): void {
    this.loaded = undefined;
  }

  async selectModel(): Promise<ModelInfo | undefined> {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Load Model',
      title: 'Choose a Hugging Face checkpoint folder',
      defaultUri: modelDir() ? vscode.Uri.file(modelDir()) : undefined,
    });
    const dir = picked?.[0]?.fsPath;
    if (!dir) return undefined;
    return this.load(dir);
  }

  /**
   * Loads `dir` with a progress notification, and makes it the workspace's model once it loaded. The user chose it,
   * so the runner may read it wherever it is.
   */
  async load(dir: string): Promise<ModelInfo | undefined> {
    try {
      await this.runner.addRoots([dir]);
      const model = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Pinpoint: loading ${path.basename(dir)}…`, cancellable: false },
        () => this.ensureLoaded(modelSpec(dir)),
      );
      await rememberModel(dir);
      return model;
    } catch (err) {
      void vscode.window.showErrorMessage(`Pinpoint could not load the model: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  async showRunnerInfo(): Promise<void> {
    try {
      const info = await this.runner.info();
      const cuda = info.cudaProviderInstalled ? 'CUDA provider installed' : 'CUDA provider not installed (CPU only)';
      void vscode.window.showInformationMessage(
        `Pinpoint runner ${info.runnerVersion} (process ${info.pid}) · ONNX Runtime ${info.onnxruntimeVersion} · ${cuda} · Node ${info.node}`,
      );
    } catch (err) {
      void vscode.window.showErrorMessage(`Pinpoint runner: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }

  private show(model: ModelInfo | undefined, device: Device | undefined): void {
    this.loaded = model && device ? { info: model, device } : undefined;
    this.statusBar.setModel(model);
  }
}
