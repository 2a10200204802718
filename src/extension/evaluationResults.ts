import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseResultLines, parseSummary, RESULTS_FILE, SUMMARY_FILE, type ItemResult, type Summary } from '../protocol/evaluation';

/** A finished (or stopped) evaluation run as its folder holds it: every item's result, and the summary. */
export interface EvaluationRun {
  out: string;
  summary: Summary;
  results: ItemResult[];
}

export function readEvaluationRun(out: string): EvaluationRun {
  const file = path.join(out, SUMMARY_FILE);
  const summary = parseSummary(fs.readFileSync(file, 'utf8'), file);
  return { out, summary, results: readResults(out) };
}

/** The complete lines only: a run killed mid-write leaves a partial last line, which the runner drops on resume. */
export function readResults(out: string): ItemResult[] {
  const file = path.join(out, RESULTS_FILE);
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  return parseResultLines(
    file,
    text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .slice(0, -1),
  );
}

/** The 1-based line of results.jsonl that holds each item, for links from a diagnostic to the raw result. */
export function resultLines(results: ItemResult[]): Map<string, number> {
  return new Map(results.map((r, i) => [r.id, i + 1]));
}
