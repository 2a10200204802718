import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ModelInfo } from '../protocol/protocol';

/** The status bar entry: which model the runner holds and where it runs; a click picks another. */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('pinpoint.model', vscode.StatusBarAlignment.Left);
  private model: ModelInfo | undefined;
  private busyJobs = 0;

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

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    const icon = this.busyJobs > 0 ? '$(sync~spin)' : '$(target)';
    const model = this.model ? `${path.basename(this.model.dir)} · ${this.model.provider.toUpperCase()}` : 'no model';
    this.item.text = `${icon} Pinpoint: ${model}`;
    this.item.tooltip = this.model ? describeModel(this.model) : 'No model loaded. Click to choose a checkpoint folder.';
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
