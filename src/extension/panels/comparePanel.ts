import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CompareFromView, CompareState, CompareToView, Comparison } from '../../protocol/views';
import { compareRuns, comparisonCsv } from '../comparison';
import { readEvaluationRun } from '../evaluationResults';
import { SinglePanel } from './webviewPanel';

/** The Compare panel on the extension's side: the comparison shown, rebuilt from the two runs' folders after a reload. */
export class ComparePanel implements vscode.Disposable, vscode.WebviewPanelSerializer<CompareState> {
  static readonly viewType = 'pinpoint.compare';
  private readonly panel: SinglePanel<CompareToView, CompareFromView>;
  private shown: Comparison | undefined;

  constructor(extensionUri: vscode.Uri) {
    this.panel = new SinglePanel(
      extensionUri,
      { viewType: ComparePanel.viewType, title: 'Pinpoint: Compare', script: 'compare' },
      () => this.shown && { type: 'show', comparison: this.shown },
      (message) => void this.export(message.format),
    );
  }

  show(comparison: Comparison): Promise<void> {
    this.shown = comparison;
    return this.panel.show();
  }

  /** Writes the comparison shown; `to` skips the save dialog. */
  async export(format: 'json' | 'csv', to?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const comparison = this.shown;
    if (!comparison) return undefined;
    const target =
      to ??
      (await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.file(path.join(path.dirname(comparison.tuned.out), `comparison.${format}`)),
        filters: format === 'json' ? { JSON: ['json'] } : { CSV: ['csv'] },
        saveLabel: `Export ${format.toUpperCase()}`,
      }));
    if (!target) return undefined;
    await fs.writeFile(target.fsPath, format === 'json' ? `${JSON.stringify(comparison, null, 2)}\n` : comparisonCsv(comparison));
    void vscode.window.showInformationMessage(`Pinpoint: comparison written to ${target.fsPath}`);
    return target;
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: CompareState | undefined): Promise<void> {
    this.panel.adopt(panel);
    if (!state || ![state.base.out, state.tuned.out].every((out) => existsSync(out))) {
      panel.dispose();
      return;
    }
    await this.show(
      compareRuns(
        state.data,
        { label: state.base.label, model: state.base.model, run: readEvaluationRun(state.base.out) },
        { label: state.tuned.label, model: state.tuned.model, run: readEvaluationRun(state.tuned.out) },
        state.kl,
      ),
    );
  }

  dispose(): void {
    this.panel.dispose();
  }
}
