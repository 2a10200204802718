import fs from 'node:fs';
import path from 'node:path';
import type { ItemResult, RunSettings, Summary } from '../../../src/protocol/evaluation';

/**
 * An output folder: results.jsonl, appended one batch at a time (one write, then fsync), and summary.json,
 * replaced atomically (temp file, fsync, rename). A run killed mid-write leaves at most one unfinished last line,
 * which reopening cuts off, so its items run again; every complete line is an item that is never rerun.
 */

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';

export class ResultStore {
  private constructor(
    readonly dir: string,
    /** every complete line, in the order written */
    readonly results: ItemResult[],
  ) {}

  /** Opens `dir`, taking up the results of an earlier run with the same settings. */
  static open(dir: string, settings: RunSettings): ResultStore {
    fs.mkdirSync(dir, { recursive: true });
    const resultsFile = path.join(dir, RESULTS_FILE);
    if (!fs.existsSync(resultsFile)) return new ResultStore(dir, []);
    checkSameRun(dir, settings);
    return new ResultStore(dir, readResults(resultsFile));
  }

  append(results: ItemResult[]): void {
    const fd = fs.openSync(path.join(this.dir, RESULTS_FILE), 'a');
    try {
      fs.writeSync(fd, results.map((r) => `${JSON.stringify(r)}\n`).join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.results.push(...results);
  }

  writeSummary(summary: Summary): void {
    const file = path.join(this.dir, SUMMARY_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, `${JSON.stringify(summary, null, 2)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  }
}

function checkSameRun(dir: string, settings: RunSettings): void {
  const summaryFile = path.join(dir, SUMMARY_FILE);
  if (!fs.existsSync(summaryFile)) {
    throw new Error(`${path.join(dir, RESULTS_FILE)} has no ${SUMMARY_FILE} beside it to say which run wrote it; use another output folder`);
  }
  let previous: RunSettings | undefined;
  try {
    previous = (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Partial<Summary>).settings;
  } catch (err) {
    throw new Error(`${summaryFile} is not valid JSON (${(err as Error).message}), so the run cannot be resumed; use another output folder`, { cause: err });
  }
  const keys = Object.keys(settings) as Array<keyof RunSettings>;
  const differing = keys.filter((key) => JSON.stringify(previous?.[key]) !== JSON.stringify(settings[key]));
  if (differing.length > 0) {
    throw new Error(`${dir} holds results of a run with other settings (${differing.join(', ')} differ), so it cannot be resumed; use another output folder`);
  }
}

function readResults(file: string): ItemResult[] {
  const content = fs.readFileSync(file, 'utf8');
  const complete = content.lastIndexOf('\n') + 1;
  if (complete < content.length) fs.truncateSync(file, Buffer.byteLength(content.slice(0, complete)));
  const seen = new Set<string>();
  return content.slice(0, complete).split('\n').slice(0, -1).map((line, i) => {
    let result: ItemResult;
    try {
      result = JSON.parse(line) as ItemResult;
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not a results line (${(err as Error).message}); the file was changed by something other than pinpoint eval`, { cause: err });
    }
    if (typeof result?.id !== 'string') throw new Error(`${file}:${i + 1}: a results line must have an "id"`);
    if (seen.has(result.id)) throw new Error(`${file}:${i + 1}: item ${JSON.stringify(result.id)} is written twice`);
    seen.add(result.id);
    return result;
  });
}
