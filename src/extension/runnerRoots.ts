import * as vscode from 'vscode';
import { modelDir, outputFolder, tuningSettings } from './settings';
import type { WorkspaceRuns } from './workspaceRuns';

/**
 * What the runner may read and write under (`pinpoint serve --root`): the workspace's folders, the extension's
 * storage and the output folder, the model and training data the settings name, and the files of the runs this
 * workspace remembers. What the user chooses besides (a model folder, a file opened from elsewhere, an export
 * target) is added when chosen, with RunnerClient.addRoots.
 */
export function runnerRoots(storage: vscode.Uri, runs: WorkspaceRuns): string[] {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((folder) => folder.uri.scheme === 'file').map((folder) => folder.uri.fsPath);
  const tuning = runs.tuning();
  const remembered = [...runs.evaluatedFiles(), runs.heads()?.data, tuning?.model, tuning?.data, tuning?.run];
  const roots = [...folders, storage.fsPath, outputFolder(storage), modelDir(), tuningSettings().data, ...remembered];
  return roots.filter((root): root is string => root !== undefined && root !== '');
}
