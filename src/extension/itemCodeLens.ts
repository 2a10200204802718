import * as vscode from 'vscode';
import type { EvaluationDocuments } from './evaluationDocuments';

/** Above every item of an evaluation file: run it again on its own, or localise heads on it alone. */
export class ItemCodeLens implements vscode.CodeLensProvider {
  readonly onDidChangeCodeLenses: vscode.Event<void>;

  constructor(private readonly documents: EvaluationDocuments) {
    this.onDidChangeCodeLenses = (listener, thisArgs, disposables) => documents.onDidChange(() => listener.call(thisArgs), undefined, disposables);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const parsed = this.documents.parsedItems(document);
    if (!parsed) return [];
    return parsed.items.flatMap((item) => {
      const range = new vscode.Range(item.line - 1, 0, item.line - 1, 0);
      return [
        new vscode.CodeLens(range, { title: '$(play) Re-run item', command: 'pinpoint.rerunItem', arguments: [document.uri, item.id] }),
        new vscode.CodeLens(range, {
          title: '$(search) Locate heads for this item',
          command: 'pinpoint.locateItem',
          arguments: [document.uri, item.id],
        }),
      ];
    });
  }
}
