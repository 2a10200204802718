import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HeadRef } from '../protocol/heads';
import type { ModelSpec } from '../protocol/jobs';
import type { EvaluationSettings } from './settings';

/**
 * Where each run writes, under the output folder. An evaluation's folder is named by everything its results depend
 * on (model, data as it is on disk, settings, and for a knockout check the heads), so that running the same thing again resumes
 * the finished run, and changing any of it starts a new one: the runner refuses to resume another run's folder.
 */

export function evaluationFolder(root: string, model: ModelSpec, data: string, settings: EvaluationSettings): string {
  const key = digest([path.resolve(model.dir), model.dtype, fileDigest(data), settings.challenges, settings.maxNewTokens]);
  return path.join(root, 'evaluations', `${stem(data)}-${path.basename(model.dir)}-${key}`);
}

/** A knockout check's conditions are evaluations too, resumed the same way. */
export function knockoutFolder(root: string, model: ModelSpec, data: string, settings: EvaluationSettings, heads: HeadRef[]): string {
  const key = digest([path.resolve(model.dir), model.dtype, fileDigest(data), settings.challenges, settings.maxNewTokens, heads]);
  return path.join(root, 'knockout', `${stem(data)}-${path.basename(model.dir)}-${key}`);
}

/** One item run again on its own, apart from the file's run so that its result replaces the earlier one. */
export function itemFolder(root: string, model: ModelSpec, data: string, item: string): string {
  return path.join(root, 'items', `${stem(data)}-${path.basename(model.dir)}-${digest([path.resolve(model.dir), data, item])}`);
}

export function headsFolder(root: string, model: ModelSpec, data: string, item?: string): string {
  const name = `${stem(data)}-${path.basename(model.dir)}${item === undefined ? '' : `-${digest([item])}`}`;
  return path.join(root, 'heads', name);
}

/** A new folder per tuning run, named by when it started, so that runs never overwrite each other. */
export function tuningFolder(root: string, model: string, started: Date): string {
  const time = started.toISOString().replace(/[:.]/g, '-');
  return path.join(root, 'tuning', `${path.basename(model)}-${time}`);
}

function stem(file: string): string {
  return path.basename(file).replace(/\.jsonl?$/, '');
}

function fileDigest(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function digest(parts: unknown[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 10);
}
