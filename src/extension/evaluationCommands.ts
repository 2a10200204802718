import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EvaluateResult } from '../protocol/jobs';
import { evaluationTarget } from './evaluationTarget';
import { evaluationFolder, itemFolder } from './runFolders';
import type { Services } from './services';
import { evaluationSettings, modelSpec, outputFolder } from './settings';

/** Run Evaluation on the active file, and Re-run item from its CodeLens. */

export async function runEvaluation(s: Services, target?: vscode.Uri): Promise<EvaluateResult | undefined> {
  const data = await evaluationTarget(s, target);
  const dir = data && s.models.selected();
  if (!data || !dir) return undefined;
  const model = modelSpec(dir);
  const settings = evaluationSettings();
  const out = evaluationFolder(outputFolder(s.storageUri), model, data, settings);
  const result = await s.jobs.run(`evaluating ${path.basename(data)}`, async (job) => {
    try {
      await s.models.ensureLoaded(model);
      return await s.runner.evaluate({ model, data, out, ...settings }, job.onProgress, job.token);
    } finally {
      // a stopped run's finished items are on disk too, and get their diagnostics
      if (fs.existsSync(out)) await s.runs.setEvaluation(data, out);
    }
  });
  if (result) reportSummary(result);
  return result;
}

export async function rerunItem(s: Services, uri: vscode.Uri, item: string): Promise<EvaluateResult | undefined> {
  const data = await evaluationTarget(s, uri);
  const dir = data && s.models.selected();
  if (!data || !dir) return undefined;
  const model = modelSpec(dir);
  const out = itemFolder(outputFolder(s.storageUri), model, data, item);
  // the runner resumes a folder holding the same run: empty it so that the item really runs again
  fs.rmSync(out, { recursive: true, force: true });
  const result = await s.jobs.run(`re-running ${item}`, async (job) => {
    await s.models.ensureLoaded(model);
    return s.runner.evaluate({ model, data, out, items: [item], ...evaluationSettings() }, job.onProgress, job.token);
  });
  if (result) await s.runs.setItemRun(data, item, out);
  return result;
}

function reportSummary({ summary }: EvaluateResult): void {
  const challenge = summary.metrics.challenge?.run;
  const flips = challenge?.flipRate.value;
  const parts = [`${summary.progress.done} items on ${summary.device.provider.toUpperCase()}`];
  if (challenge)
    parts.push(`accuracy ${percent(challenge.accuracyBefore.value)} before the challenge, ${percent(challenge.accuracyAfter.value)} after`);
  parts.push(flips === null || flips === undefined ? 'no flip rate (no item was answered correctly at first)' : `flip rate ${percent(flips)}`);
  if (summary.data.skippedLines.length) parts.push(`${summary.data.skippedLines.length} bad lines skipped`);
  if (summary.failedItems.length)
    parts.push(`${summary.failedItems.length} items failed (the first: ${summary.failedItems[0].id}, ${summary.failedItems[0].reason})`);
  void vscode.window.showInformationMessage(`Pinpoint: ${parts.join('; ')}. Flipped items are in the Problems panel.`);
}

function percent(value: number | null): string {
  return value === null ? 'n/a' : `${(100 * value).toFixed(1)}%`;
}
