import { escapeControls } from './excerpt';
import { parseStoredFile, StoredFileError } from './storedFile';

/**
 * A tuning run's files: `<run>/latest.json` names its newest complete checkpoint, and each `<run>/step-N/` holds
 * `pinpoint.json`, what was tuned, how and on what. `pinpoint tune` writes them (native-runner/src/training/
 * tunedCheckpoint.ts); the runner reads them to resume and export, the extension to redraw a run's loss curve.
 */
export const LATEST_FILE = 'latest.json';
export const MANIFEST_FILE = 'pinpoint.json';

export interface LatestFile {
  step: number;
  /** the step folder beside latest.json: `step-N` */
  dir: string;
}

export interface TuneManifest {
  format: 'pinpoint-tune/1';
  step: number;
  mode: string;
  heads: { layer: number; head: number }[];
  includeKeyValue: boolean;
  hyperparameters: Record<string, unknown>;
  data: { file: string; sha256: string }[];
  base: { dir: string; weightsSha256: string };
  /** per optimizer step: loss, lr, grad norm */
  metrics: { losses: number[]; lrs: number[]; gradNorms: number[] };
  blocks: string[];
}

/** Only a step folder beside it: a damaged or edited latest.json must never point elsewhere. */
export function parseLatest(text: string, file: string): LatestFile {
  const expected =
    'expected {"step": N, "dir": "step-N"} as pinpoint tune writes it; restore it, or remove it with the step folders to start the run over';
  let latest;
  try {
    latest = parseStoredFile(text, file, undefined, { step: 'number', dir: 'string' });
  } catch (err) {
    throw new StoredFileError(`${(err as Error).message}; ${expected}`, { cause: err });
  }
  if (!Number.isSafeInteger(latest.step) || latest.dir !== `step-${latest.step}`) {
    throw new StoredFileError(`${file}: holds ${escapeControls(text.trim().slice(0, 80))}; ${expected}`);
  }
  return { step: latest.step as number, dir: latest.dir as string };
}

export function parseManifest(text: string, file: string): TuneManifest {
  const manifest = parseStoredFile(text, file, 'pinpoint-tune/1', {
    step: 'number',
    mode: 'string',
    heads: 'array',
    hyperparameters: 'object',
    data: 'array',
    base: 'object',
    metrics: 'object',
    blocks: 'array',
  });
  const metrics = manifest.metrics as Record<string, unknown>;
  for (const series of ['losses', 'lrs', 'gradNorms']) {
    if (!Array.isArray(metrics[series]) || (metrics[series] as unknown[]).length !== manifest.step) {
      throw new StoredFileError(`${file}: "metrics.${series}" must be a list of one number per step (${manifest.step} steps)`);
    }
  }
  return manifest as unknown as TuneManifest;
}
