import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BEHAVIOURS, type Behaviour } from '../protocol/behaviours';
import { estimateOf, formatValue, runMetricsOf, termsOf } from '../protocol/behaviourTerms';
import type { Summary } from '../protocol/evaluation';
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

/** e.g. "8 items on CPU; accuracy before the challenge 100.0%, ..., flip rate 25.0%. Flipped items are in the Problems panel." */
function reportSummary({ summary }: EvaluateResult): void {
  const present = BEHAVIOURS.filter((b) => runMetricsOf(summary.metrics, b));
  const parts = [`${summary.progress.done} items on ${summary.device.provider.toUpperCase()}`, ...present.map((b) => headline(summary, b))];
  if (summary.data.skippedLines.length) parts.push(`${summary.data.skippedLines.length} bad lines skipped`);
  if (summary.failedItems.length)
    parts.push(`${summary.failedItems.length} items failed (the first: ${summary.failedItems[0].id}, ${summary.failedItems[0].reason})`);
  const marked = present.flatMap((b) => termsOf(b).notable?.plural ?? []);
  const where = marked.length ? ` ${capitalised(marked.join(' and '))} are in the Problems panel.` : '';
  void vscode.window.showInformationMessage(`Pinpoint: ${parts.join('; ')}.${where}`);
}

function headline(summary: Summary, behaviour: Behaviour): string {
  const terms = termsOf(behaviour);
  return terms.metrics
    .filter((metric) => terms.headline.includes(metric.key))
    .map((metric) => {
      const value = estimateOf(summary.metrics, behaviour, metric.key)?.value;
      const why = value === null && metric.missing ? ` (${metric.missing})` : '';
      return `${metric.name} ${formatValue(metric.unit, value)}${why}`;
    })
    .join(', ');
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
