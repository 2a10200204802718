import fs from 'node:fs';
import path from 'node:path';
import type { ExportResult } from '../../../src/protocol/jobs';
import { latestCheckpoint, OPTIMIZER_FILE } from '../training/tunedCheckpoint';

/**
 * A tuning run's newest checkpoint copied to `to` (an empty or missing folder), less the optimizer state that only
 * resuming needs: what is left is a Hub checkpoint to load or publish. `onFile` hears of each file before its copy.
 */
export function exportTuned(run: string, to: string, onFile: (file: string, index: number, files: number) => void = () => {}): ExportResult {
  const from = latestCheckpoint(run);
  if (from === undefined) throw new RangeError(`${run} holds no checkpoint (no latest.json)`);
  // a folder holding anything could end up a mix of two models
  if (fs.existsSync(to) && fs.readdirSync(to).length > 0) throw new RangeError(`${to} is not empty`);
  fs.mkdirSync(to, { recursive: true });
  const files = fs.readdirSync(from).filter((file) => file !== OPTIMIZER_FILE);
  files.forEach((file, i) => {
    onFile(file, i, files.length);
    fs.copyFileSync(path.join(from, file), path.join(to, file));
  });
  return { from, to, files };
}
