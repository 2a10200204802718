import * as path from 'node:path';
import * as vscode from 'vscode';
import { RESULTS_FILE } from '../protocol/evaluation';
// the parser the runner reads files with, so the editor reports exactly what a run would skip
import { parseEvaluationText, type ParsedEvaluation } from '../protocol/evaluationFile';
import { readResults, resultLines } from './evaluationResults';
import { itemDiagnostic, type ItemResultSource } from './itemDiagnostics';
import { problemColumns } from './problemColumns';
import { evaluationFileGlobs } from './settings';
import type { WorkspaceRuns } from './workspaceRuns';

/**
 * Open evaluation files: parsed as the user types, their line errors published as diagnostics at the exact
 * columns, and the notable items of their latest run (flips, contrast pairs preferring the wrong target,
 * suggested wrong answers given back) marked.
 * An evaluation file is one matched by `pinpoint.evaluation.files` or one that was run.
 */

const PARSE_DELAY_MS = 150;

export class EvaluationDocuments implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('pinpoint');
  private readonly parsed = new Map<string, ParsedEvaluation>();
  private readonly results = new Map<string, Map<string, ItemResultSource>>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly subscriptions: vscode.Disposable[];

  /** Fires when a document's items or results changed (CodeLens and hovers follow). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly runs: WorkspaceRuns) {
    this.subscriptions = [
      this.diagnostics,
      this.changed,
      vscode.workspace.onDidOpenTextDocument((d) => this.update(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.forget(d.uri)),
      runs.onDidChangeEvaluation((file) => this.resultsChanged(file)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('pinpoint.evaluation.files')) vscode.workspace.textDocuments.forEach((d) => this.update(d));
      }),
    ];
    vscode.workspace.textDocuments.forEach((d) => this.update(d));
  }

  isEvaluationFile(document: vscode.TextDocument): boolean {
    if (document.uri.scheme !== 'file' || !document.uri.fsPath.endsWith('.jsonl')) return false;
    if (this.runs.evaluation(document.uri.fsPath)) return true;
    return (
      vscode.languages.match(
        evaluationFileGlobs().map((pattern) => ({ scheme: 'file', pattern })),
        document,
      ) > 0
    );
  }

  /** The document's items as last parsed, or undefined when it is no evaluation file. */
  parsedItems(document: vscode.TextDocument): ParsedEvaluation | undefined {
    return this.parsed.get(document.uri.toString());
  }

  /** The latest result of the item, from the file's run or the item's own run since. */
  result(document: vscode.TextDocument, item: string): ItemResultSource | undefined {
    return this.resultsOf(document.uri.fsPath).get(item);
  }

  /** Parses the document now, rather than after the typing pause. */
  update(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.delete(key);
    if (!this.isEvaluationFile(document)) {
      if (this.parsed.has(key)) this.forget(document.uri);
      return;
    }
    this.parsed.set(key, parseEvaluationText(document.getText(), document.uri.fsPath));
    this.publish(document);
    this.changed.fire(document.uri);
  }

  dispose(): void {
    this.pending.forEach((timer) => clearTimeout(timer));
    this.subscriptions.forEach((s) => s.dispose());
  }

  private schedule(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.set(
      key,
      setTimeout(() => this.update(document), PARSE_DELAY_MS),
    );
  }

  private publish(document: vscode.TextDocument): void {
    const parsed = this.parsed.get(document.uri.toString())!;
    const problems = parsed.problems.map(({ line, reason }) => {
      const text = document.lineAt(line - 1).text;
      const { start, end } = problemColumns(text, reason);
      const diagnostic = new vscode.Diagnostic(new vscode.Range(line - 1, start, line - 1, end), reason, vscode.DiagnosticSeverity.Error);
      diagnostic.source = 'pinpoint';
      return diagnostic;
    });
    // results name items by id, and ids find their current lines however the file was edited since the run
    const results = this.resultsOf(document.uri.fsPath);
    const notable = parsed.items.flatMap((item) => {
      const source = results.get(item.id);
      const diagnostic = source && itemDiagnostic(document, item.line - 1, source);
      return diagnostic ? [diagnostic] : [];
    });
    this.diagnostics.set(document.uri, [...problems, ...notable]);
  }

  private resultsOf(file: string): Map<string, ItemResultSource> {
    const key = path.resolve(file);
    let results = this.results.get(key);
    if (!results) {
      results = loadResults(this.runs, key);
      this.results.set(key, results);
    }
    return results;
  }

  private resultsChanged(file: string): void {
    this.results.delete(file);
    for (const document of vscode.workspace.textDocuments) {
      if (path.resolve(document.uri.fsPath) === file) this.update(document);
    }
  }

  private forget(uri: vscode.Uri): void {
    const key = uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.delete(key);
    this.parsed.delete(key);
    this.diagnostics.delete(uri);
    this.changed.fire(uri);
  }
}

/** The file's run's results, with those of items run again on their own laid over them. */
function loadResults(runs: WorkspaceRuns, file: string): Map<string, ItemResultSource> {
  const record = runs.evaluation(file);
  const sources = new Map<string, ItemResultSource>();
  if (!record) return sources;
  for (const out of [record.out, ...new Set(Object.values(record.items))]) {
    const results = readResults(out);
    const lines = resultLines(results);
    const uri = vscode.Uri.file(path.join(out, RESULTS_FILE));
    const only =
      out === record.out
        ? undefined
        : new Set(
            Object.entries(record.items)
              .filter(([, o]) => o === out)
              .map(([id]) => id),
          );
    for (const result of results) {
      if (!only || only.has(result.id)) sources.set(result.id, { result, file: uri, line: lines.get(result.id)! });
    }
  }
  return sources;
}
