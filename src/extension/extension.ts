import * as vscode from 'vscode';
import { compareBaseTuned } from './compareCommand';
import { openDemo } from './demo';
import { EvaluationDocuments } from './evaluationDocuments';
import { rerunItem, runEvaluation } from './evaluationCommands';
import { ItemCodeLens } from './itemCodeLens';
import { Jobs } from './jobs';
import { knockout, locateHeads } from './localisationCommands';
import { Models } from './models';
import { ComparePanel } from './panels/comparePanel';
import { HeadMapPanel } from './panels/headMapPanel';
import { TuningPanel } from './panels/tuningPanel';
import { RunnerClient } from './runnerClient';
import { runnerRoots } from './runnerRoots';
import type { Services } from './services';
import { StatusBar } from './statusBar';
import { TranscriptHover } from './transcriptHover';
import { exportModel, resumeTuning, tuneHeads } from './tuningCommands';
import { WorkspaceRuns } from './workspaceRuns';

let services: Services | undefined;

/** Returns the services, which the extension-host tests drive and observe (as rust-analyzer returns its Ctx). */
export function activate(context: vscode.ExtensionContext): Services {
  const output = vscode.window.createOutputChannel('Pinpoint Runner');
  const statusBar = new StatusBar();
  const storageUri = context.storageUri ?? context.globalStorageUri;
  const runs = new WorkspaceRuns(context.workspaceState);
  const roots = () => runnerRoots(storageUri, runs);
  const runner = new RunnerClient(context.asAbsolutePath('dist/runner.js'), output, roots);
  const models = new Models(runner, statusBar);
  const s: Services = {
    extensionUri: context.extensionUri,
    storageUri,
    runner,
    runs,
    models,
    jobs: new Jobs(runner, statusBar),
    documents: new EvaluationDocuments(runs),
    headMap: new HeadMapPanel(context.extensionUri, runs, runner, models),
    tuning: new TuningPanel(context.extensionUri),
    compare: new ComparePanel(context.extensionUri),
  };
  services = s;
  const evaluationFiles: vscode.DocumentSelector = [{ scheme: 'file', pattern: '**/*.jsonl' }];
  context.subscriptions.push(
    output,
    statusBar,
    runner,
    runs,
    s.models,
    s.jobs,
    s.documents,
    s.headMap,
    s.tuning,
    s.compare,
    vscode.window.registerWebviewPanelSerializer(HeadMapPanel.viewType, s.headMap),
    vscode.window.registerWebviewPanelSerializer(TuningPanel.viewType, s.tuning),
    vscode.window.registerWebviewPanelSerializer(ComparePanel.viewType, s.compare),
    vscode.languages.registerHoverProvider(evaluationFiles, new TranscriptHover(s.documents)),
    vscode.languages.registerCodeLensProvider(evaluationFiles, new ItemCodeLens(s.documents)),
    ...registerCommands(s),
    // a folder added or a setting changed gives the runner running now its new roots; a later one starts with them
    vscode.workspace.onDidChangeWorkspaceFolders(() => runner.addRoots(roots())),
    vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('pinpoint') && runner.addRoots(roots())),
  );
  return s;
}

export function deactivate(): void {
  services?.runner.dispose();
  services = undefined;
}

function registerCommands(s: Services): vscode.Disposable[] {
  const commands: Record<string, (...args: never[]) => unknown> = {
    'pinpoint.selectModel': () => s.models.selectModel(),
    'pinpoint.showRunnerInfo': () => s.models.showRunnerInfo(),
    'pinpoint.runEvaluation': (uri?: vscode.Uri) => runEvaluation(s, uri),
    'pinpoint.rerunItem': (uri: vscode.Uri, item: string) => rerunItem(s, uri, item),
    'pinpoint.locateHeads': (uri?: vscode.Uri) => locateHeads(s, uri),
    'pinpoint.locateItem': (uri: vscode.Uri, item: string) => locateHeads(s, uri, item),
    'pinpoint.knockout': (heads?: Parameters<typeof knockout>[1]) => knockout(s, heads),
    'pinpoint.tuneHeads': (heads?: Parameters<typeof tuneHeads>[1]) => tuneHeads(s, heads),
    'pinpoint.resumeTuning': () => resumeTuning(s),
    'pinpoint.compare': (uri?: vscode.Uri) => compareBaseTuned(s, uri),
    'pinpoint.exportModel': (to?: string) => exportModel(s, to),
    'pinpoint.openDemo': () => openDemo(s),
    'pinpoint.stopJob': () => {
      if (!s.jobs.stop()) void vscode.window.showInformationMessage('Pinpoint: no job is running.');
    },
  };
  return Object.entries(commands).map(([id, run]) => vscode.commands.registerCommand(id, id === 'pinpoint.stopJob' ? run : whenTrusted(run)));
}

/**
 * In an untrusted workspace (package.json, capabilities.untrustedWorkspaces) no command starts the runner, which loads
 * the model files and data the workspace names and writes results into its folders; evaluation files are still
 * checked as they are edited. Stopping a job needs no runner of its own.
 */
function whenTrusted(run: (...args: never[]) => unknown): (...args: never[]) => unknown {
  return (...args) => {
    if (vscode.workspace.isTrusted) return run(...args);
    void vscode.window.showWarningMessage(
      'Pinpoint does not start its runner in an untrusted workspace: it would load the model files ' +
        'and data the workspace names and write results into it. Trust the workspace to run Pinpoint.',
    );
    return undefined;
  };
}
