import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ModelInfo } from '../protocol/protocol';
import { modelDir } from './settings';

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
    const icon = this.busyJobs > 0 || this.job ? '$(sync~spin)' : '$(target)';
    // the device is known once the runner has loaded the model (it loads the workspace's model with the first job)
    const configured = modelDir();
    const model = this.model
      ? `${path.basename(this.model.dir)} · ${this.model.provider.toUpperCase()}`
      : configured ? `${path.basename(configured)} (not loaded)` : 'no model';
    this.item.text = `${icon} Pinpoint: ${model}${this.job ? ` · ${this.job}` : ''}`;
    const about = this.model
      ? describeModel(this.model)
      : configured ? `${configured}\nLoaded by the first job. Click to choose another checkpoint folder.` : 'No model chosen. Click to choose a checkpoint folder.';
    this.item.tooltip = this.job ? `Running: ${this.job} (Pinpoint: Stop Job stops it)\n${about}` : about;
  }
}

function describeModel(model: ModelInfo): string {
  const nodes = Object.entries(model.nodesByProvider).map(([provider, count]) => `  ${provider}: ${count}`);
  return [
    model.dir,
    `${model.modelType}, ${model.layers} layers, ${model.heads} heads (${model.kvHeads} KV) of ${model.headDim}, ${model.dtype}`,
    `Runs on ${model.provider.toUpperCase()} (kernels per execution provider in a profiled run):`,
    ...nodes,
    'Click to choose another checkpoint folder.',
  ].join('\n');
}
