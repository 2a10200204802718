import * as vscode from 'vscode';
import { notableItem } from '../protocol/behaviourTerms';
import type { ItemResult } from '../protocol/evaluation';

/**
 * After a run, the notable items of each behaviour (src/protocol/behaviourTerms.ts: a flip under challenge, a
 * contrast pair preferring the wrong target, a suggested wrong answer given back) marked on their lines. Related
 * information links each to its line in results.jsonl, where the whole record is.
 */

export interface ItemResultSource {
  result: ItemResult;
  /** results.jsonl and the line of it that holds the result */
  file: vscode.Uri;
  line: number;
}

export function itemDiagnostic(document: vscode.TextDocument, line: number, source: ItemResultSource): vscode.Diagnostic | undefined {
  const notable = notableItem(source.result);
  if (!notable) return undefined;
  const text = document.lineAt(line);
  const range = new vscode.Range(line, text.firstNonWhitespaceCharacterIndex, line, text.text.length);
  const severity = notable.severity === 'warning' ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Information;
  const diagnostic = new vscode.Diagnostic(range, notable.message, severity);
  diagnostic.source = 'pinpoint';
  diagnostic.code = notable.code;
  const where = new vscode.Location(source.file, new vscode.Position(source.line - 1, 0));
  const related = notable.related.length > 0 ? notable.related : ['the result in results.jsonl'];
  diagnostic.relatedInformation = related.map((message) => new vscode.DiagnosticRelatedInformation(where, message));
  return diagnostic;
}
