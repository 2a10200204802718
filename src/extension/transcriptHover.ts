import * as vscode from 'vscode';
import { behaviourOf, behaviourOfResult } from '../protocol/behaviours';
import { explainResult, type Explanation } from '../protocol/behaviourTerms';
import type { EvaluationDocuments } from './evaluationDocuments';

/**
 * Hovering an item of an evaluation file that has a result explains it as its behaviour does: each trial's whole
 * conversation, or a contrast pair's prompts, targets and logit differences.
 */
export class TranscriptHover implements vscode.HoverProvider {
  constructor(private readonly documents: EvaluationDocuments) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const item = this.documents.parsedItems(document)?.items.find((i) => i.line - 1 === position.line);
    const source = item && this.documents.result(document, item.id);
    if (!source) return undefined;
    // the item as the file now has it, unless it has since become another behaviour's
    const current = behaviourOf(item) === behaviourOfResult(source.result) ? item : undefined;
    const md = new vscode.MarkdownString();
    md.appendMarkdown(`**Pinpoint** · item \`${source.result.id}\`\n\n`);
    appendExplanation(md, explainResult(source.result, current));
    return new vscode.Hover(md, document.lineAt(position.line).range);
  }
}

/** Labels in bold, texts as plain text: model output and prompts are no markdown to render. */
function appendExplanation(md: vscode.MarkdownString, { verdict, sections }: Explanation): void {
  if (verdict) {
    md.appendText(verdict);
    md.appendMarkdown('\n\n');
  }
  for (const { heading, lines } of sections) {
    if (heading) {
      md.appendMarkdown('---\n\n');
      md.appendText(heading);
      md.appendMarkdown('\n\n');
    }
    for (const { label, text } of lines) {
      md.appendMarkdown(`**${label}:** `);
      md.appendText(text);
      md.appendMarkdown('\n\n');
    }
  }
}
