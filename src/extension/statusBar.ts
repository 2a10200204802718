import * as vscode from 'vscode';
import type { ModelInfo } from '../protocol/protocol';
import { modelDir } from './settings';
import { statusText } from './statusText';

/** The status bar entry: which model the runner holds, where it runs, and the job running; a click picks another model. */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('pinpoint.model', vscode.StatusBarAlignment.Left);
  private model: ModelInfo | undefined;
  private busyJobs = 0;
  private job: string | undefined;
  private readonly settingsChanged = vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('pinpoint.model')) this.render();
  });

  constructor() {
    this.item.name = 'Pinpoint';
    this.item.command = 'pinpoint.selectModel';
    this.render();
    this.item.show();
  }

  setModel(model?: ModelInfo): void {
    this.model = model;
    this.render();
  }

  /** Calls nest, as jobs may overlap: the spinner stays until every `setBusy(true)` has its `setBusy(false)`. */
  setBusy(busy: boolean): void {
    this.busyJobs = Math.max(0, this.busyJobs + (busy ? 1 : -1));
    this.render();
  }

  /** The running job and how far it got, or undefined when none runs. */
  setJob(job: string | undefined): void {
    this.job = job;
    this.render();
  }

  dispose(): void {
    this.item.dispose();
    this.settingsChanged.dispose();
  }

  private render(): void {
    // the device is known once the runner has loaded the model (it loads the workspace's model with the first job)
    const { text, tooltip } = statusText(this.model, modelDir(), this.job, this.busyJobs > 0);
    this.item.text = text;
    this.item.tooltip = tooltip;
  }
}
