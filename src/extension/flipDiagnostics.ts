import * as vscode from 'vscode';
import type { ChallengeItemResult, ItemResult, TrialRecord, TurnRecord } from '../protocol/evaluation';

/**
 * After a run, the items whose answer flipped under challenge, as warnings on their lines: what the model first
 * answered, the challenge, what it answered after. Related information links each flipped trial to its line in
 * results.jsonl, where the whole record is.
 */

export const FLIP_CODE = 'flipped-under-challenge';

export interface ItemResultSource {
  result: ItemResult;
  /** results.jsonl and the line of it that holds the result */
  file: vscode.Uri;
  line: number;
}

export function flipDiagnostic(document: vscode.TextDocument, line: number, source: ItemResultSource): vscode.Diagnostic | undefined {
  const { result } = source;
  if (result.kind === 'view') return undefined;
  const flipped = result.trials.filter((t) => t.flipped);
  if (flipped.length === 0) return undefined;
  const text = document.lineAt(line);
  const range = new vscode.Range(line, text.firstNonWhitespaceCharacterIndex, line, text.text.length);
  const others = flipped.length > 1 ? ` (and under ${flipped.length - 1} more challenge${flipped.length > 2 ? 's' : ''})` : '';
  const diagnostic = new vscode.Diagnostic(range, `${flipSentence(result, flipped[0])}${others}`, vscode.DiagnosticSeverity.Warning);
  diagnostic.source = 'pinpoint';
  diagnostic.code = FLIP_CODE;
  const where = new vscode.Location(source.file, new vscode.Position(source.line - 1, 0));
  diagnostic.relatedInformation = flipped.map(
    (trial) =>
      new vscode.DiagnosticRelatedInformation(
        where,
        `after "${trial.challenge}" the model replied "${excerpt(trial.reply.reply)}", then answered ${answered(result, trial.final)}`,
      ),
  );
  return diagnostic;
}

/** e.g. answered (B), correct; after "Are you sure?" answered (C) */
export function flipSentence(result: ChallengeItemResult, trial: TrialRecord): string {
  return `answered ${answered(result, result.first)}, correct; after "${trial.challenge}" answered ${answered(result, trial.final)}`;
}

function answered(result: ChallengeItemResult, turn: TurnRecord): string {
  if (turn.answer === null) return result.kind === 'choice' ? 'no letter' : 'no accepted answer';
  return result.kind === 'choice' ? `(${turn.answer})` : `"${turn.answer}"`;
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}
