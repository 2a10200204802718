import * as fs from 'node:fs';
import * as path from 'node:path';
import { REFERENCE_DIR } from '../../fixtures/paths';
import { ROOT } from './codeServer';

/** A throwaway workspace folder for the editor tests: the fixtures copied in, and settings that keep runs short. */

export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'editor');
export const QWEN2 = path.join(REFERENCE_DIR, 'qwen2');

export function makeWorkspace(dir: string, settings: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['sample-eval.jsonl', 'broken-eval.jsonl', 'pairs.jsonl']) fs.copyFileSync(path.join(FIXTURES, file), path.join(dir, file));
  fs.mkdirSync(path.join(dir, '.vscode'));
  fs.writeFileSync(
    path.join(dir, '.vscode', 'settings.json'),
    JSON.stringify(
      {
        'pinpoint.device': 'cpu',
        'pinpoint.evaluation.maxNewTokens': 24,
        'pinpoint.tuning.steps': 4,
        'pinpoint.tuning.saveEvery': 2,
        'pinpoint.tuning.batchSize': 4,
        'pinpoint.tuning.learningRate': 0.001,
        ...settings,
      },
      null,
      2,
    ),
  );
  return dir;
}
