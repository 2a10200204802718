import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { HeadRef } from '../../protocol/heads';
import { parseKnockoutReport } from '../../protocol/evaluation';
import type { AttentionQuery, HeadMapData, HeadMapFromView, HeadMapState, HeadMapToView } from '../../protocol/views';
import { readHeads } from '../localisationCommands';
import type { Models } from '../models';
import type { RunnerClient } from '../runnerClient';
import { modelSpec } from '../settings';
import type { WorkspaceRuns } from '../workspaceRuns';
import { SinglePanel } from './webviewPanel';

/**
 * The Head Map panel on the extension's side: what heads.json it shows, the user's selection, the knockout check,
 * and the attention patterns the view asks the runner for.
 */
export class HeadMapPanel implements vscode.Disposable, vscode.WebviewPanelSerializer<HeadMapState> {
  static readonly viewType = 'pinpoint.headMap';
  private readonly panel: SinglePanel<HeadMapToView, HeadMapFromView>;
  private shown: HeadMapData | undefined;

  constructor(
    extensionUri: vscode.Uri,
    private readonly runs: WorkspaceRuns,
    private readonly runner: RunnerClient,
    private readonly models: Models,
  ) {
    this.panel = new SinglePanel(
      extensionUri,
      { viewType: HeadMapPanel.viewType, title: 'Pinpoint: Head Map', script: 'headMap' },
      () => this.shown && { type: 'show', data: this.shown },
      (m) => this.receive(m),
    );
  }

  show(file: string, selected?: HeadRef[]): Promise<void> {
    const heads = readHeads(file);
    const record = this.runs.knockout();
    const knockout =
      record?.headsFile === file && fs.existsSync(record.file) ? parseKnockoutReport(fs.readFileSync(record.file, 'utf8'), record.file) : undefined;
    const located = this.runs.heads();
    const data = located?.file === file && fs.existsSync(located.data) ? located.data : undefined;
    this.shown = { file, heads, selected: selected ?? heads.selected, knockout, data };
    return this.panel.show();
  }

  /** The heads selected in the open Head Map; undefined when none is open. */
  selection(): HeadRef[] | undefined {
    return this.panel.isOpen ? this.shown?.selected : undefined;
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: HeadMapState | undefined): Promise<void> {
    this.panel.adopt(panel);
    if (state && fs.existsSync(state.file)) await this.show(state.file, state.selected);
    else panel.dispose();
  }

  dispose(): void {
    this.panel.dispose();
  }

  private receive(message: Exclude<HeadMapFromView, { type: 'ready' }>): void {
    switch (message.type) {
      case 'select':
        if (this.shown) this.shown.selected = message.heads;
        break;
      case 'tune':
        void vscode.commands.executeCommand('pinpoint.tuneHeads', message.heads);
        break;
      case 'knockout':
        void vscode.commands.executeCommand('pinpoint.knockout', message.heads);
        break;
      case 'attention':
        void this.attention(message.query);
        break;
    }
  }

  /**
   * The pattern on a prompt localisation scored: for a question its correct answer, then the challenge or the
   * counterfactual that heads.json names; for a contrast pair its prompt or counterfactual, which the runner reads.
   */
  private async attention(query: AttentionQuery): Promise<void> {
    const { heads, data } = this.shown ?? {};
    if (!heads || !data) return;
    try {
      const model = modelSpec(heads.model.dir);
      await this.models.ensureLoaded(model);
      // the runner reads the one its item needs: a question the follow-up, a contrast pair the side
      const followUp = query.side === 'reference' ? heads.challenge : heads.counterfactual;
      const result = await this.runner.attention({ model, data, item: query.item, followUp, side: query.side, layer: query.layer, head: query.head });
      this.panel.post({ type: 'attention', query, result });
    } catch (err) {
      this.panel.post({ type: 'attentionFailed', query, message: err instanceof Error ? err.message : String(err) });
    }
  }
}
