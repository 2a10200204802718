import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { Ready } from '../../protocol/views';

/**
 * One kind of Pinpoint webview panel, of which at most one is open: its HTML shell under a strict
 * Content-Security-Policy (scripts only by nonce, styles, fonts and images only from the extension's own files).
 * VS Code drops a hidden webview's page and loads it again when it is shown, and drops messages meanwhile; so
 * every time the page says it is ready it is sent the whole of what it shows (`snapshot`), and updates between
 * are sent only while it is live.
 */

export interface PanelKind {
  viewType: string;
  title: string;
  /** the bundle dist/webview/<script>.js */
  script: string;
}

export class SinglePanel<ToView, FromView extends { type: string }> implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly kind: PanelKind,
    /** the message that makes a freshly loaded page show everything; undefined while there is nothing to show */
    private readonly snapshot: () => ToView | undefined,
    private readonly onMessage: (message: Exclude<FromView, Ready>) => void,
  ) {}

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  /** Opens the panel, or brings it to the front, showing the snapshot. */
  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      this.sendSnapshot();
      return;
    }
    // after a reload VS Code revives a restored panel only once its tab is shown; one not revived yet would stay
    // beside the new panel, so its tab goes
    const restored = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith(this.kind.viewType));
    await vscode.window.tabGroups.close(restored, true);
    // every Pinpoint panel opens in the second column, beside the evaluation file, rather than in a column each
    this.adopt(vscode.window.createWebviewPanel(this.kind.viewType, this.kind.title, { viewColumn: vscode.ViewColumn.Two, preserveFocus: true }, {}));
  }

  /** Takes over a panel VS Code restored after a reload (from a WebviewPanelSerializer). */
  adopt(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'pinpoint.svg');
    panel.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
    panel.webview.html = this.html(panel.webview);
    const receiving = panel.webview.onDidReceiveMessage((message: FromView) => {
      if (message.type !== 'ready') {
        this.onMessage(message as Exclude<FromView, Ready>);
        return;
      }
      this.ready = true;
      this.sendSnapshot();
    });
    const hiding = panel.onDidChangeViewState(() => {
      if (!panel.visible) this.ready = false;
    });
    panel.onDidDispose(() => {
      receiving.dispose();
      hiding.dispose();
      if (this.panel === panel) this.panel = undefined;
    });
  }

  /** An update, sent if the page is live; a page loaded later gets it with the snapshot. */
  post(message: ToView): void {
    if (this.ready) void this.panel?.webview.postMessage(message);
  }

  dispose(): void {
    this.panel?.dispose();
  }

  private sendSnapshot(): void {
    const message = this.snapshot();
    if (message) this.post(message);
  }

  private html(webview: vscode.Webview): string {
    const nonce = crypto.randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', `${this.kind.script}.js`));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${style}">
  <title>${this.kind.title}</title>
</head>
<body>
  <main id="root"></main>
  <script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }
}
