import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LocateMethod, LocateMetric } from '../protocol/heads';
import type { LossOn, ModelSpec, Schedule, TuneHyperparameters } from '../protocol/jobs';
import type { Device, Dtype } from '../protocol/protocol';

/**
 * The `pinpoint.*` settings as typed values. package.json declares them with their defaults; the enums there are
 * not enforced on what users type, but the runner checks every value it is sent and names what is wrong.
 */

export interface EvaluationSettings {
  challenges: string[];
  maxNewTokens: number;
  batchSize: number;
}

export interface LocalisationSettings {
  method: LocateMethod;
  metric: LocateMetric;
  counterfactual: string;
  targets: [string, string];
  /** undefined: the runner's default */
  topK: number | undefined;
}

export interface TuningSettings {
  data: string;
  includeKeyValue: boolean;
  hyperparameters: TuneHyperparameters;
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('pinpoint');
}

export function modelDir(): string {
  return resolvePath(config().get<string>('model', ''));
}

export function modelSpec(dir: string): ModelSpec {
  return { dir, device: config().get<Device>('device', 'auto'), dtype: config().get<Dtype>('dtype', 'float32') };
}

export function evaluationSettings(): EvaluationSettings {
  const c = config();
  return {
    challenges: c.get<string[]>('challenges', []),
    maxNewTokens: c.get<number>('evaluation.maxNewTokens', 64),
    batchSize: c.get<number>('evaluation.batchSize', 8),
  };
}

export function localisationSettings(): LocalisationSettings {
  const c = config();
  const targets = c.get<string[]>('localisation.targets', []);
  const topK = c.get<number>('localisation.topK', 0);
  return {
    method: c.get<LocateMethod>('localisation.method', 'path'),
    metric: c.get<LocateMetric>('localisation.metric', 'logit_diff'),
    counterfactual: c.get<string>('localisation.counterfactual', ''),
    targets: [targets[0] ?? '', targets[1] ?? ''],
    topK: topK > 0 ? topK : undefined,
  };
}

export function tuningSettings(): TuningSettings {
  const c = config();
  return {
    data: resolvePath(c.get<string>('tuning.data', '')),
    includeKeyValue: c.get<boolean>('tuning.includeKeyValue', false),
    hyperparameters: {
      steps: c.get<number>('tuning.steps', 100),
      learningRate: c.get<number>('tuning.learningRate', 1e-4),
      batchSize: c.get<number>('tuning.batchSize', 8),
      gradAccum: c.get<number>('tuning.gradAccum', 1),
      weightDecay: c.get<number>('tuning.weightDecay', 0.01),
      maxGradNorm: c.get<number>('tuning.maxGradNorm', 1),
      schedule: c.get<Schedule>('tuning.schedule', 'linear'),
      warmupSteps: c.get<number>('tuning.warmupSteps', 0),
      seed: c.get<number>('tuning.seed', 0),
      saveEvery: c.get<number>('tuning.saveEvery', 50),
      lossOn: c.get<LossOn>('tuning.lossOn', 'last'),
    },
  };
}

/** Where runs write: `pinpoint.outputFolder`, relative to the first workspace folder, else the extension's storage. */
export function outputFolder(storage: vscode.Uri): string {
  return resolvePath(config().get<string>('outputFolder', '.pinpoint')) || storage.fsPath;
}

/** Globs of the files treated as evaluation files (diagnostics, CodeLens) before any run names them. */
export function evaluationFileGlobs(): string[] {
  return config().get<string[]>('evaluation.files', []);
}

export function rememberModel(dir: string): Thenable<void> {
  return updateSetting('model', dir);
}

/** Writes `pinpoint.<key>`: a workspace setting when a folder is open, else the user's. */
export function updateSetting(key: string, value: unknown): Thenable<void> {
  const target = vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  return config().update(key, value, target);
}

/** Relative paths in settings are relative to the first workspace folder; with none open they cannot be resolved. */
function resolvePath(value: string): string {
  if (value === '' || path.isAbsolute(value)) return value;
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? path.join(folder.uri.fsPath, value) : '';
}
