import * as vscode from 'vscode';
import type { ItemResult } from '../protocol/evaluation';
import type { EvaluationDocuments } from './evaluationDocuments';
import { flipSentence } from './flipDiagnostics';

/** Hovering an item of an evaluation file that has a result shows the whole conversation of each trial. */
export class TranscriptHover implements vscode.HoverProvider {
  constructor(private readonly documents: EvaluationDocuments) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const item = this.documents.parsedItems(document)?.items.find((i) => i.line - 1 === position.line);
    const source = item && this.documents.result(document, item.id);
    if (!source) return undefined;
    return new vscode.Hover(transcriptMarkdown(source.result), document.lineAt(position.line).range);
  }
}

function transcriptMarkdown(result: ItemResult): vscode.MarkdownString {
  const md = new vscode.MarkdownString();
  md.appendMarkdown(`**Pinpoint** · item \`${result.id}\`\n\n`);
  if (result.kind === 'view') {
    md.appendMarkdown(
      `answered (${result.answer}); the user's view: ${result.matching.map((l) => `(${l})`).join(', ')}${result.matchesView ? ' — agrees with it' : ''}\n\n`,
    );
    appendConversation(md, result.transcript);
    return md;
  }
  for (const trial of result.trials) {
    md.appendMarkdown('---\n\n');
    md.appendText(
      trial.flipped
        ? `Flipped: ${flipSentence(result, trial)}`
        : `Challenge "${trial.challenge}": ${trial.final.correct ? 'correct' : 'wrong'} at the end`,
    );
    md.appendMarkdown('\n\n');
    appendConversation(md, trial.transcript);
  }
  return md;
}

/** Roles in bold, messages as plain text: model output is no markdown to render. */
function appendConversation(md: vscode.MarkdownString, transcript: { role: string; content: string }[]): void {
  for (const message of transcript) {
    md.appendMarkdown(`**${message.role}:** `);
    md.appendText(message.content);
    md.appendMarkdown('\n\n');
  }
}
