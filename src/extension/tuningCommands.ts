import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { headLabel, type HeadRef } from '../protocol/heads';
import type { ExportResult, TuneResult, TuneStep } from '../protocol/jobs';
import type { TuningStatus } from '../protocol/views';
import { readHeads } from './localisationCommands';
import { tuningFolder } from './runFolders';
import type { Services } from './services';
import { modelSpec, outputFolder, tuningSettings } from './settings';
import type { TuningRecord } from './workspaceRuns';
import { LATEST_FILE, MANIFEST_FILE, parseLatest, parseManifest } from '../protocol/tuning';

/** Pinpoint-Tune Selected Heads, resuming a stopped run, and Export Tuned Model. */

export async function tuneHeads(s: Services, given?: HeadRef[]): Promise<TuneResult | undefined> {
  const located = s.runs.heads();
  const heads = given ?? s.headMap.selection() ?? (located && readHeads(located.file).selected);
  const model = s.models.selected();
  if (!model) return undefined;
  if (!heads?.length) {
    void vscode.window.showWarningMessage('Pinpoint: locate the heads first (Pinpoint: Locate Heads) and select the ones to tune.');
    return undefined;
  }
  const data = tuningSettings().data || (await pickTrainingData());
  if (!data) return undefined;
  await s.runner.addRoots([data]);
  const run = tuningFolder(outputFolder(s.storageUri), model, new Date());
  return tune(s, { run, model, data, heads }, false);
}

export async function resumeTuning(s: Services): Promise<TuneResult | undefined> {
  const record = s.runs.tuning();
  if (!record) {
    void vscode.window.showWarningMessage('Pinpoint: there is no tuning run to resume.');
    return undefined;
  }
  return tune(s, record, true);
}

async function tune(s: Services, record: TuningRecord, resume: boolean): Promise<TuneResult | undefined> {
  const settings = tuningSettings();
  await s.runs.setTuning(record);
  const points = resume ? checkpointSteps(record.run, settings.hyperparameters.steps) : [];
  await s.tuning.open({
    run: record.run,
    model: record.model,
    heads: record.heads,
    steps: settings.hyperparameters.steps,
    points,
    status: 'running',
    checkpoint: record.checkpoint,
  });
  const outcome: { status: TuningStatus; message?: string } = { status: 'failed' };
  const result = await s.jobs.run(`tuning ${record.heads.map(headLabel).join(', ')}`, async (job) => {
    try {
      const tuned = await s.runner.tune(
        {
          model: modelSpec(record.model),
          data: record.data,
          out: record.run,
          heads: record.heads,
          includeKeyValue: settings.includeKeyValue,
          hyperparameters: settings.hyperparameters,
          resume,
        },
        (progress) => {
          job.onProgress(progress);
          if (progress.tune) s.tuning.step(progress.tune);
        },
        job.token,
      );
      outcome.status = 'done';
      return tuned;
    } catch (err) {
      outcome.status = job.token.isCancellationRequested ? 'stopped' : 'failed';
      outcome.message =
        outcome.status === 'stopped' ? 'Stopped. Resume continues from the newest checkpoint.' : String(err instanceof Error ? err.message : err);
      throw err;
    } finally {
      s.models.released();
    }
  });
  if (result) await s.runs.setTuning({ ...record, checkpoint: result.checkpoint });
  s.tuning.status(outcome.status, outcome.message, result?.checkpoint);
  return result;
}

/** The steps up to a run's newest checkpoint, from the losses and rates its manifest (pinpoint.json) records. */
function checkpointSteps(run: string, steps: number): TuneStep[] {
  const latest = path.join(run, LATEST_FILE);
  if (!fs.existsSync(latest)) return [];
  const manifest = path.join(run, parseLatest(fs.readFileSync(latest, 'utf8'), latest).dir, MANIFEST_FILE);
  const { metrics } = parseManifest(fs.readFileSync(manifest, 'utf8'), manifest);
  return metrics.losses.map((loss, i) => ({
    step: i + 1,
    steps,
    loss,
    lr: metrics.lrs[i],
    gradNorm: metrics.gradNorms[i],
    tokensPerSecond: NaN,
    etaSeconds: NaN,
  }));
}

async function pickTrainingData(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Tune on This',
    title: 'Training conversations (JSON Lines of {"messages": [...]}); set pinpoint.tuning.data to skip this',
    filters: { 'JSON Lines': ['jsonl'] },
  });
  return picked?.[0]?.fsPath;
}

/** Copies the newest checkpoint of the latest tuning run to a folder of the user's choosing (or `to`). */
export async function exportModel(s: Services, to?: string): Promise<ExportResult | undefined> {
  const record = s.runs.tuning();
  if (!record?.checkpoint) {
    void vscode.window.showWarningMessage('Pinpoint: no tuned model yet; tune some heads first (Pinpoint: Pinpoint-Tune Selected Heads).');
    return undefined;
  }
  const target =
    to ??
    (
      await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.file(path.join(path.dirname(record.model), `${path.basename(record.model)}-pinpoint-tuned`)),
        saveLabel: 'Export Tuned Model',
        title: 'Folder to write the tuned model to (a Hugging Face checkpoint)',
      })
    )?.fsPath;
  if (!target) return undefined;
  await s.runner.addRoots([target]);
  const result = await s.jobs.run('exporting the tuned model', (job) =>
    s.runner.exportModel({ run: record.run, to: target }, job.onProgress, job.token),
  );
  if (result) {
    void vscode.window.showInformationMessage(`Pinpoint: tuned model written to ${result.to}`, 'Reveal').then((choice) => {
      if (choice) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(result.to));
    });
  }
  return result;
}
