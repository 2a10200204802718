import type * as vscode from 'vscode';
import type { EvaluationDocuments } from './evaluationDocuments';
import type { Jobs } from './jobs';
import type { Models } from './models';
import type { ComparePanel } from './panels/comparePanel';
import type { HeadMapPanel } from './panels/headMapPanel';
import type { TuningPanel } from './panels/tuningPanel';
import type { RunnerClient } from './runnerClient';
import type { WorkspaceRuns } from './workspaceRuns';

/** What the commands work with, made once at activation (as rust-analyzer's Ctx). */
export interface Services {
  extensionUri: vscode.Uri;
  /** where runs go when `pinpoint.outputFolder` cannot be resolved (no folder open) */
  storageUri: vscode.Uri;
  runner: RunnerClient;
  models: Models;
  jobs: Jobs;
  runs: WorkspaceRuns;
  documents: EvaluationDocuments;
  headMap: HeadMapPanel;
  tuning: TuningPanel;
  compare: ComparePanel;
}
