import * as vscode from 'vscode';
import type { TuneStep } from '../../protocol/jobs';
import { appendStep, type TuningData, type TuningFromView, type TuningState, type TuningStatus, type TuningToView } from '../../protocol/views';
import { SinglePanel } from './webviewPanel';

/** The panel's buttons are the palette's commands. */
const COMMANDS: Record<Exclude<TuningFromView, { type: 'ready' }>['type'], string> = {
  stop: 'pinpoint.stopJob',
  resume: 'pinpoint.resumeTuning',
  compare: 'pinpoint.compare',
  export: 'pinpoint.exportModel',
};

/**
 * The Tuning panel on the extension's side: fed the steps of the running tuning job. The job runs in the runner,
 * which ends with the window, so a panel restored after a reload shows its run as stopped, to be resumed.
 */
export class TuningPanel implements vscode.Disposable, vscode.WebviewPanelSerializer<TuningState> {
  static readonly viewType = 'pinpoint.tuning';
  private readonly panel: SinglePanel<TuningToView, TuningFromView>;
  /** the run shown, kept up to date with every step, for a page loaded again */
  private data: TuningData | undefined;

  constructor(extensionUri: vscode.Uri) {
    this.panel = new SinglePanel(
      extensionUri,
      { viewType: TuningPanel.viewType, title: 'Pinpoint: Tuning', script: 'tuning' },
      () => this.data && { type: 'show', data: this.data },
      (message) => void vscode.commands.executeCommand(COMMANDS[message.type]),
    );
  }

  open(data: TuningData): Promise<void> {
    this.data = data;
    return this.panel.show();
  }

  step(step: TuneStep): void {
    if (!this.data) return;
    appendStep(this.data.points, step);
    this.panel.post({ type: 'step', step });
  }

  status(status: TuningStatus, message?: string, checkpoint?: string): void {
    if (!this.data) return;
    Object.assign(this.data, { status, message, checkpoint: checkpoint ?? this.data.checkpoint });
    this.panel.post({ type: 'status', status, message, checkpoint });
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: TuningState | undefined): Promise<void> {
    this.panel.adopt(panel);
    if (!state) {
      panel.dispose();
      return;
    }
    const interrupted = state.status === 'running';
    await this.open(
      interrupted
        ? {
            ...state,
            status: 'stopped',
            message: 'The window was reloaded while this run was tuning. Resume continues it from its newest checkpoint.',
          }
        : state,
    );
  }

  dispose(): void {
    this.panel.dispose();
  }
}
