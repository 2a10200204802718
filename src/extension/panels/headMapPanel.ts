import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { HeadRef, HeadsFile } from '../../protocol/heads';
import type { KnockoutReport } from '../../protocol/evaluation';
import type { HeadMapData, HeadMapFromView, HeadMapState, HeadMapToView } from '../../protocol/views';
import type { WorkspaceRuns } from '../workspaceRuns';
import { SinglePanel } from './webviewPanel';

/** The Head Map panel on the extension's side: what heads.json it shows, the user's selection, the knockout check. */
export class HeadMapPanel implements vscode.Disposable, vscode.WebviewPanelSerializer<HeadMapState> {
  static readonly viewType = 'pinpoint.headMap';
  private readonly panel: SinglePanel<HeadMapToView, HeadMapFromView>;
  private shown: HeadMapData | undefined;

  constructor(extensionUri: vscode.Uri, private readonly runs: WorkspaceRuns) {
    this.panel = new SinglePanel(extensionUri, { viewType: HeadMapPanel.viewType, title: 'Pinpoint: Head Map', script: 'headMap' },
      () => this.shown && { type: 'show', data: this.shown }, (m) => this.receive(m));
  }

  show(file: string, selected?: HeadRef[]): Promise<void> {
    const heads = JSON.parse(fs.readFileSync(file, 'utf8')) as HeadsFile;
    const record = this.runs.knockout();
    const knockout = record?.headsFile === file && fs.existsSync(record.file)
      ? JSON.parse(fs.readFileSync(record.file, 'utf8')) as KnockoutReport
      : undefined;
    this.shown = { file, heads, selected: selected ?? heads.selected, knockout };
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
    }
  }
}

