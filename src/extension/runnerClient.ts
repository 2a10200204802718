import * as childProcess from 'node:child_process';
import * as readline from 'node:readline';
import * as vscode from 'vscode';
import {
  createMessageConnection, ErrorCodes, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection,
  type RequestType,
} from 'vscode-jsonrpc/node';
import {
  AttentionRequest, CompareRequest, EvaluateRequest, ExportRequest, JobProgressNotification, KnockoutRequest, LocateRequest, TuneRequest,
  type AttentionParams, type AttentionResult, type CompareParams, type CompareResult, type EvaluateParams, type EvaluateResult, type ExportParams, type ExportResult,
  type JobProgress, type KnockoutParams, type KnockoutResult, type LocateParams, type LocateResult, type TuneParams, type TuneResult,
} from '../protocol/jobs';
import {
  GenerateRequest, LoadModelRequest, LogNotification, RUNNER_ENV, RunnerErrorCode, RuntimeInfoRequest,
  type GenerateParams, type GenerateResult, type LoadModelParams, type LogParams, type ModelInfo, type RuntimeInfo,
} from '../protocol/protocol';

/**
 * The runner process (`dist/runner.js serve`) and the JSON-RPC connection to it. The runner is a separate process
 * because onnxruntime-node must never load in the extension host: a native crash there would take every extension
 * down with it. It starts on the first request, and again as soon as it stops unexpectedly.
 */

type JobRequest<P, R> = RequestType<P & { job: string }, R, void>;
export type OnJobProgress = (progress: JobProgress) => void;

const MAX_RESTARTS_PER_MINUTE = 3;

interface Running {
  process: childProcess.ChildProcess;
  connection: MessageConnection;
  /** the runner's last words on stderr, for the message shown when it stops */
  lastStderrLine: string;
  /** why the extension stopped it, when it did */
  stopReason?: string;
}

export class RunnerClient implements vscode.Disposable {
  private running: Running | undefined;
  private crashTimes: number[] = [];
  private gaveUp = false;
  private disposed = false;
  private jobCount = 0;
  private readonly jobListeners = new Map<string, OnJobProgress>();
  private readonly didRestart = new vscode.EventEmitter<string>();

  /** Fires with what the user was told when the runner stopped unexpectedly, taking its loaded model with it. */
  readonly onDidRestart = this.didRestart.event;

  constructor(
    private readonly runnerScript: string,
    private readonly output: vscode.OutputChannel,
  ) {}

  info(): Promise<RuntimeInfo> {
    return this.request((c) => c.sendRequest(RuntimeInfoRequest));
  }

  loadModel(params: LoadModelParams): Promise<ModelInfo> {
    return this.request((c) => c.sendRequest(LoadModelRequest, params));
  }

  generate(params: GenerateParams, token?: vscode.CancellationToken): Promise<GenerateResult> {
    return this.request((c) => c.sendRequest(GenerateRequest, params, token));
  }

  evaluate(params: Omit<EvaluateParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<EvaluateResult> {
    return this.job(EvaluateRequest, params, onProgress, token);
  }

  attention(params: AttentionParams): Promise<AttentionResult> {
    return this.request((c) => c.sendRequest(AttentionRequest, params));
  }

  locate(params: Omit<LocateParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<LocateResult> {
    return this.job(LocateRequest, params, onProgress, token);
  }

  knockout(params: Omit<KnockoutParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<KnockoutResult> {
    return this.job(KnockoutRequest, params, onProgress, token);
  }

  compare(params: Omit<CompareParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<CompareResult> {
    return this.job(CompareRequest, params, onProgress, token);
  }

  tune(params: Omit<TuneParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<TuneResult> {
    return this.job(TuneRequest, params, onProgress, token);
  }

  exportModel(params: Omit<ExportParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<ExportResult> {
    return this.job(ExportRequest, params, onProgress, token);
  }

  /** Kills the runner, whatever it is doing, and starts another: for a job that does not stop when cancelled. */
  restart(reason: string): void {
    if (!this.running) return;
    this.running.stopReason = reason;
    this.running.process.kill('SIGKILL');
  }

  dispose(): void {
    this.disposed = true;
    this.stop();
    this.didRestart.dispose();
  }

  private async request<R>(send: (connection: MessageConnection) => Promise<R>): Promise<R> {
    const running = this.ensureRunning();
    try {
      return await send(running.connection);
    } catch (err) {
      throw translateError(err, running);
    }
  }

  private async job<P, R>(type: JobRequest<P, R>, params: P, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<R> {
    const job = `job-${++this.jobCount}`;
    this.jobListeners.set(job, onProgress);
    try {
      return await this.request((c) => c.sendRequest(type, { ...params, job }, token));
    } finally {
      this.jobListeners.delete(job);
    }
  }

  private ensureRunning(): Running {
    if (this.disposed) throw new Error('the Pinpoint runner was shut down');
    if (this.gaveUp) {
      throw new Error('the Pinpoint runner stopped repeatedly and stays stopped; see the "Pinpoint Runner" output, then reload the window');
    }
    this.running ??= this.start();
    return this.running;
  }

  private start(): Running {
    const node = vscode.workspace.getConfiguration('pinpoint').get<string>('runner.nodePath') || process.execPath;
    this.output.appendLine(`Starting the runner: ${node} ${this.runnerScript} serve`);
    const child = childProcess.spawn(node, [this.runnerScript, 'serve'], {
      // VS Code's own executable is Electron; this makes it behave as plain Node
      env: { ...process.env, ...RUNNER_ENV, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const running: Running = { process: child, connection, lastStderrLine: '' };
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      this.output.appendLine(line);
      if (line.trim() !== '') running.lastStderrLine = line;
    });
    connection.onNotification(LogNotification, (params) => this.output.appendLine(formatLog(params)));
    connection.onNotification(JobProgressNotification, (progress) => this.jobListeners.get(progress.job)?.(progress));
    // 'close' rather than 'exit': it comes after stderr is drained, so the last line is the runner's last words
    child.on('close', (code, signal) => this.onStopped(running, `exit code ${code} / signal ${signal}`));
    // e.g. pinpoint.runner.nodePath names no executable
    child.on('error', (err) => this.onStopped(running, err.message));
    connection.listen();
    return running;
  }

  private onStopped(running: Running, how: string): void {
    if (running !== this.running) return;
    this.stop();
    if (this.disposed) return;
    if (running.stopReason) {
      this.output.appendLine(`Restarted the runner: ${running.stopReason}`);
      this.running = this.start();
      this.didRestart.fire(`Pinpoint restarted its runner: ${running.stopReason}.`);
      return;
    }
    const now = Date.now();
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < 60_000), now];
    this.gaveUp = this.crashTimes.length > MAX_RESTARTS_PER_MINUTE;
    const next = this.gaveUp
      ? `It stopped ${this.crashTimes.length} times within a minute, so it stays stopped until the window is reloaded.`
      : 'It was restarted.';
    const lastWords = running.lastStderrLine || 'nothing on stderr';
    const message = `Pinpoint runner stopped (${how}): ${lastWords}. ${next}`;
    this.output.appendLine(message);
    void vscode.window.showErrorMessage(message, 'Show Output').then((choice) => choice && this.output.show());
    // started again now rather than on the next request, so that a broken runtime shows up at once
    if (!this.gaveUp) this.running = this.start();
    this.didRestart.fire(message);
  }

  /** Disposing the connection rejects the requests still waiting on this runner. */
  private stop(): void {
    const running = this.running;
    this.running = undefined;
    running?.connection.dispose();
    running?.process.kill();
  }
}

function formatLog({ level, message }: LogParams): string {
  return level === 'info' ? message : `[${level}] ${message}`;
}

/** Shapes the errors callers see: cancellation as VS Code's, a lost runner with its last words. */
function translateError(err: unknown, running: Running): unknown {
  if (!(err instanceof ResponseError)) return err;
  if (err.code === RunnerErrorCode.Cancelled) return new vscode.CancellationError();
  if (err.code === ErrorCodes.PendingResponseRejected) {
    // killed by restart() because a cancelled job did not stop: that job was cancelled all the same
    if (running.stopReason) return new vscode.CancellationError();
    return new Error(`the Pinpoint runner stopped before answering: ${running.lastStderrLine || 'nothing on stderr'}`);
  }
  return err;
}
