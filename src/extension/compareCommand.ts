import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Comparison } from '../protocol/views';
import { compareRuns } from './comparison';
import { readEvaluationRun } from './evaluationResults';
import { evaluationTarget } from './evaluationTarget';
import { evaluationFolder } from './runFolders';
import type { Services } from './services';
import { evaluationSettings, modelSpec, outputFolder } from './settings';

/**
 * Compare Base vs Tuned: the evaluation file run through the base model and through the latest tuned checkpoint
 * (each resumed if it ran before with the same settings) and the KL shift between them, side by side in the
 * Compare panel.
 */
export async function compareBaseTuned(s: Services, target?: vscode.Uri): Promise<Comparison | undefined> {
  const tuned = s.runs.tuning()?.checkpoint;
  if (!tuned) {
    void vscode.window.showWarningMessage('Pinpoint: no tuned model yet; tune some heads first (Pinpoint: Pinpoint-Tune Selected Heads).');
    return undefined;
  }
  const data = await evaluationTarget(s, target);
  const base = data && s.models.selected();
  if (!data || !base) return undefined;
  const settings = evaluationSettings();
  const root = outputFolder(s.storageUri);
  const models = { base: modelSpec(base), tuned: modelSpec(tuned) };
  const outs = { base: evaluationFolder(root, models.base, data, settings), tuned: evaluationFolder(root, models.tuned, data, settings) };
  const comparison = await s.jobs.run(`comparing base and tuned on ${path.basename(data)}`, async (job) => {
    await s.models.ensureLoaded(models.base);
    const result = await s.runner.compare({ base: models.base, tuned: models.tuned, data, out: outs, ...settings }, job.onProgress, job.token);
    return compareRuns(
      data,
      { label: 'base', model: base, run: readEvaluationRun(outs.base) },
      { label: `tuned (${path.basename(tuned)})`, model: tuned, run: readEvaluationRun(outs.tuned) },
      { mean: result.klShift, prompts: result.prompts },
    );
  });
  if (comparison) await s.compare.show(comparison);
  return comparison;
}
