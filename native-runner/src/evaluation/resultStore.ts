import fs from 'node:fs';
import path from 'node:path';
import type { ItemResult, RunSettings, Summary } from '../../../src/protocol/evaluation';
import { openWeights } from '../checkpoint/safetensors';
import { weightsSha256 } from '../model/weightsSha256';
import { OutputLock } from '../outputLock';

/**
 * An output folder: results.jsonl, appended one batch at a time (one write, then fsync), and summary.json,
 * replaced atomically (temp file, fsync, rename). A run killed mid-write leaves at most one unfinished last line,
 * which reopening cuts off, so its items run again; every complete line is an item that is never rerun.
 * The folder is held from opening until the summary of a complete run is written (outputLock.ts), and the run
 * is identified by the content of its model's weights, not by the folder they are in.
 */

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';

export class ResultStore {
  private constructor(
    readonly dir: string,
    /** the run's settings with its model's and judge's content identities, as summary.json records them */
    private readonly settings: RunSettings,
    /** every complete line, in the order written */
    readonly results: ItemResult[],
    private readonly lock: OutputLock,
  ) {}

  /**
   * Opens `dir`, taking up the results of an earlier run with the same settings. A run that fails after this
   * keeps the folder until its process ends or runs on the folder again (outputLock.ts).
   */
  static open(dir: string, settings: RunSettings): ResultStore {
    const lock = OutputLock.take(dir, 'evaluation');
    try {
      const identified = withWeightIdentities(settings);
      const resultsFile = path.join(dir, RESULTS_FILE);
      if (!fs.existsSync(resultsFile)) return new ResultStore(dir, identified, [], lock);
      checkSameRun(dir, identified);
      const { lines, end } = completeLines(resultsFile);
      // the items appended next start a line of their own
      if (end < fs.statSync(resultsFile).size) fs.truncateSync(resultsFile, end);
      return new ResultStore(dir, identified, parseResults(resultsFile, lines), lock);
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

  /** With the store's settings, which identify the weights; the summary of a complete run ends the hold on the folder. */
  writeSummary(summary: Summary): void {
    const file = path.join(this.dir, SUMMARY_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, `${JSON.stringify({ ...summary, settings: this.settings }, null, 2)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    if (summary.status === 'complete') this.lock.release();
  }
}

/** The results a finished run left in `dir`, read without taking the folder or changing anything in it. */
export function storedResults(dir: string): ItemResult[] {
  const file = path.join(dir, RESULTS_FILE);
  return parseResults(file, completeLines(file).lines);
}

/** The folders name where the weights were; their content says which they were. */
function withWeightIdentities(settings: RunSettings): RunSettings {
  return {
    ...settings,
    modelWeightsSha256: weightsSha256(openWeights(settings.model)),
    judgeWeightsSha256: settings.judge === null ? null : weightsSha256(openWeights(settings.judge)),
  };
}

/** Compared to resume: everything but the folders, which a moved model changes and its weights' hashes stand for. */
const NOT_COMPARED: (keyof RunSettings)[] = ['model', 'judge'];

function checkSameRun(dir: string, settings: RunSettings): void {
  const summaryFile = path.join(dir, SUMMARY_FILE);
  if (!fs.existsSync(summaryFile)) {
    throw new Error(`${path.join(dir, RESULTS_FILE)} has no ${SUMMARY_FILE} beside it to say which run wrote it; use another output folder`);
  }
  let previous: Partial<RunSettings> | undefined;
  try {
    previous = (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Partial<Summary>).settings;
  } catch (err) {
    throw new Error(`${summaryFile} is not valid JSON (${(err as Error).message}), so the run cannot be resumed; use another output folder`, { cause: err });
  }
  const keys = (Object.keys(settings) as Array<keyof RunSettings>).filter((key) => !NOT_COMPARED.includes(key));
  const differing = keys.filter((key) => JSON.stringify(previous?.[key]) !== JSON.stringify(settings[key]));
  if (differing.length > 0) {
    const named = differing.map((key) => describeDifference(key, previous?.[key], settings));
    throw new Error(`${dir} holds results of a run with other settings (${named.join(', ')} differ), so it cannot be resumed; use another output folder`);
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

function parseResults(file: string, lines: string[]): ItemResult[] {
  const seen = new Set<string>();
  return lines.map((line, i) => {
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
