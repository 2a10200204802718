import fs from 'node:fs';
import path from 'node:path';
import {
  parseResultLines,
  parseSummary,
  RESULTS_FILE,
  SUMMARY_FILE,
  type ItemResult,
  type RunSettings,
  type Summary,
} from '../../../src/protocol/evaluation';
import { OutputLock } from '../outputLock';

/**
 * An output folder: results.jsonl, appended one batch at a time (one write, then fsync), and summary.json,
 * replaced atomically (temp file, fsync, rename). A run killed mid-write leaves at most one unfinished last line,
 * which reopening cuts off, so its items run again; every complete line is an item that is never rerun.
 * The folder is held from opening until the store is closed (outputLock.ts), and the run is identified by the
 * content of its model's weights, not by the folder they are in.
 */

export class ResultStore {
  private constructor(
    readonly dir: string,
    /** every complete line, in the order written */
    readonly results: ItemResult[],
    private readonly lock: OutputLock,
  ) {}

  /** Opens `dir`, taking up the results of an earlier run with the same settings; `close` ends the hold on it. */
  static open(dir: string, settings: RunSettings): ResultStore {
    const lock = OutputLock.take(dir, 'evaluation');
    try {
      const resultsFile = path.join(dir, RESULTS_FILE);
      if (!fs.existsSync(resultsFile)) return new ResultStore(dir, [], lock);
      checkSameRun(dir, settings);
      const { lines, end } = completeLines(resultsFile);
      // the items appended next start a line of their own
      if (end < fs.statSync(resultsFile).size) fs.truncateSync(resultsFile, end);
      return new ResultStore(dir, parseResultLines(resultsFile, lines), lock);
    } catch (err) {
      lock.release();
      throw err;
    }
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

  close(): void {
    this.lock.release();
  }
}

/** The results a finished run left in `dir`, read without taking the folder or changing anything in it. */
export function storedResults(dir: string): ItemResult[] {
  const file = path.join(dir, RESULTS_FILE);
  return parseResultLines(file, completeLines(file).lines);
}

/** Compared to resume: everything but the folders, which a moved model changes and its weights' hashes stand for. */
const NOT_COMPARED: (keyof RunSettings)[] = ['model', 'judge'];

function checkSameRun(dir: string, settings: RunSettings): void {
  const summaryFile = path.join(dir, SUMMARY_FILE);
  if (!fs.existsSync(summaryFile)) {
    throw new Error(`${path.join(dir, RESULTS_FILE)} has no ${SUMMARY_FILE} beside it to say which run wrote it; use another output folder`);
  }
  // summaries written before weights were identified by content lack those settings, hence Partial
  let previous: Partial<RunSettings>;
  try {
    previous = parseSummary(fs.readFileSync(summaryFile, 'utf8'), summaryFile).settings;
  } catch (err) {
    throw new Error(`${(err as Error).message}, so the run cannot be resumed; use another output folder`, { cause: err });
  }
  const keys = (Object.keys(settings) as Array<keyof RunSettings>).filter((key) => !NOT_COMPARED.includes(key));
  const differing = keys.filter((key) => JSON.stringify(previous[key]) !== JSON.stringify(settings[key]));
  if (differing.length > 0) {
    const named = differing.map((key) => describeDifference(key, previous[key], settings));
    throw new Error(
      `${dir} holds results of a run with other settings (${named.join(', ')} differ), so it cannot be resumed; use another output folder`,
    );
  }
}

function describeDifference(key: keyof RunSettings, previous: unknown, settings: RunSettings): string {
  const folder = key === 'modelWeightsSha256' ? settings.model : key === 'judgeWeightsSha256' ? settings.judge : undefined;
  if (folder === undefined) return key;
  const recorded = typeof previous === 'string' ? previous : 'none recorded';
  return `the weights of ${folder ?? 'no judge'} (SHA-256 ${settings[key] ?? 'none'} now, ${recorded} in ${SUMMARY_FILE})`;
}

/** The file's complete lines and the byte they end at: a run killed mid-write may have left an unfinished last one. */
function completeLines(file: string): { lines: string[]; end: number } {
  const content = fs.readFileSync(file, 'utf8');
  const complete = content.slice(0, content.lastIndexOf('\n') + 1);
  return { lines: complete.split('\n').slice(0, -1), end: Buffer.byteLength(complete) };
}
