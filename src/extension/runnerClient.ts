import * as vscode from 'vscode';
import { ErrorCodes, ResponseError, type CancellationToken, type MessageConnection, type RequestType } from 'vscode-jsonrpc/node';
import {
  AttentionRequest,
  CompareRequest,
  EvaluateRequest,
  ExportRequest,
  JobProgressNotification,
  KnockoutRequest,
  LocateRequest,
  TuneRequest,
  type AttentionParams,
  type AttentionResult,
  type CompareParams,
  type CompareResult,
  type EvaluateParams,
  type EvaluateResult,
  type ExportParams,
  type ExportResult,
  type JobProgress,
  type KnockoutParams,
  type KnockoutResult,
  type LocateParams,
  type LocateResult,
  type TuneParams,
  type TuneResult,
} from '../protocol/jobs';
import {
  AddRootsRequest,
  GenerateRequest,
  LoadModelRequest,
  LogNotification,
  RunnerErrorCode,
  RuntimeInfoRequest,
  type GenerateParams,
  type GenerateResult,
  type LoadModelParams,
  type LogParams,
  type ModelInfo,
  type RuntimeInfo,
} from '../protocol/protocol';
import { RunnerProcess, type RequestOptions } from './runnerProcess';

/**
 * The runner process (`dist/runner.js serve`) and the JSON-RPC connection to it. The runner is a separate process
 * because onnxruntime-node must never load in the extension host: a native crash there would take every extension
 * down with it. It starts on the first request, and again as soon as it stops unexpectedly. It may read and write
 * only under the roots it is given (`runnerRoots`, and what `addRoots` adds).
 */

type JobRequest<P, R> = RequestType<P & { job: string }, R, void>;
type Send<R> = (connection: MessageConnection, token: CancellationToken) => Promise<R>;
export type OnJobProgress = (progress: JobProgress) => void;

const MAX_RESTARTS_PER_MINUTE = 3;

/**
 * How long a request that is not a job waits for its answer. The runner runs one model request at a time, so these
 * allow for a job before it, and model/load may first convert a large checkpoint's weights; runtime/info and
 * runner/addRoots are answered at once, unless the runner is stuck.
 */
const ANSWER_WITHIN_MS: Record<string, number> = {
  [RuntimeInfoRequest.method]: 30_000,
  [AddRootsRequest.method]: 30_000,
  [LoadModelRequest.method]: 15 * 60_000,
  [GenerateRequest.method]: 10 * 60_000,
  [AttentionRequest.method]: 10 * 60_000,
};

export class RunnerClient implements vscode.Disposable {
  private running: RunnerProcess | undefined;
  /** roots added since activation, which a restarted runner is started with */
  private readonly addedRoots = new Set<string>();
  private crashTimes: number[] = [];
  private gaveUp = false;
  private disposed = false;
  private jobCount = 0;
  private readonly jobListeners = new Map<string, OnJobProgress>();
  private readonly didRestart = new vscode.EventEmitter<string>();

  /** Fires with what the user was told when the runner stopped unexpectedly, taking its loaded model with it. */
  readonly onDidRestart = this.didRestart.event;

  /** `roots` is asked each time a runner starts: the workspace's folders may have changed. */
  constructor(
    private readonly runnerScript: string,
    private readonly output: vscode.OutputChannel,
    private readonly roots: () => string[],
  ) {}

  info(): Promise<RuntimeInfo> {
    return this.plain(RuntimeInfoRequest.method, (c, token) => c.sendRequest(RuntimeInfoRequest, token));
  }

  loadModel(params: LoadModelParams): Promise<ModelInfo> {
    return this.plain(LoadModelRequest.method, (c, token) => c.sendRequest(LoadModelRequest, params, token));
  }

  generate(params: GenerateParams, token?: vscode.CancellationToken): Promise<GenerateResult> {
    return this.plain(GenerateRequest.method, (c, t) => c.sendRequest(GenerateRequest, params, t), token);
  }

  evaluate(params: Omit<EvaluateParams, 'job'>, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<EvaluateResult> {
    return this.job(EvaluateRequest, params, onProgress, token);
  }

  attention(params: AttentionParams): Promise<AttentionResult> {
    return this.plain(AttentionRequest.method, (c, token) => c.sendRequest(AttentionRequest, params, token));
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

  /**
   * Lets the runner use what the user chose (a model folder, a file opened from elsewhere, an export target). It
   * never fails: a runner that did not take them refuses the request naming them, with the roots it has.
   */
  async addRoots(paths: string[]): Promise<void> {
    const added = paths.filter((p) => p !== '' && !this.addedRoots.has(p));
    if (added.length === 0) return;
    for (const p of added) this.addedRoots.add(p);
    // a runner not started yet is started with them
    if (!this.running) return;
    try {
      await this.plain(AddRootsRequest.method, (c, token) => c.sendRequest(AddRootsRequest, { roots: added }, token));
    } catch (err) {
      this.output.appendLine(`The runner did not take ${added.join(', ')} as roots: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Kills the runner, whatever it is doing, and starts another: for a job that does not stop when cancelled. */
  restart(reason: string): void {
    if (!this.running) return;
    this.running.stopReason = reason;
    this.running.stop('SIGKILL');
  }

  dispose(): void {
    this.disposed = true;
    this.stop();
    this.didRestart.dispose();
  }

  private plain<R>(method: string, send: Send<R>, token?: vscode.CancellationToken): Promise<R> {
    return this.request(method, send, { token, within: ANSWER_WITHIN_MS[method] });
  }

  private async job<P, R>(type: JobRequest<P, R>, params: P, onProgress: OnJobProgress, token: vscode.CancellationToken): Promise<R> {
    const job = `job-${++this.jobCount}`;
    this.jobListeners.set(job, onProgress);
    try {
      return await this.request(type.method, (c, t) => c.sendRequest(type, { ...params, job }, t), { token });
    } finally {
      this.jobListeners.delete(job);
    }
  }

  private async request<R>(method: string, send: Send<R>, options: RequestOptions): Promise<R> {
    const running = this.ensureRunning();
    try {
      return await running.request(method, (token) => send(running.connection, token), options);
    } catch (err) {
      throw translateError(err, running);
    }
  }

  private ensureRunning(): RunnerProcess {
    if (this.disposed) throw new Error('the Pinpoint runner was shut down');
    if (this.gaveUp) {
      throw new Error('the Pinpoint runner stopped repeatedly and stays stopped; see the "Pinpoint Runner" output, then reload the window');
    }
    this.running ??= this.start();
    return this.running;
  }

  private start(): RunnerProcess {
    const node = vscode.workspace.getConfiguration('pinpoint').get<string>('runner.nodePath') || process.execPath;
    const roots = [...new Set([...this.roots(), ...this.addedRoots])];
    this.output.appendLine(`Starting the runner: ${node} ${this.runnerScript} serve, reading and writing only under ${roots.join(', ')}`);
    const running: RunnerProcess = new RunnerProcess(
      { node, script: this.runnerScript, roots },
      {
        onStderrLine: (line) => this.output.appendLine(line),
        onStopped: (how) => this.onStopped(running, how),
      },
    );
    running.connection.onNotification(LogNotification, (params) => this.output.appendLine(formatLog(params)));
    running.connection.onNotification(JobProgressNotification, (progress) => this.jobListeners.get(progress.job)?.(progress));
    return running;
  }

  private onStopped(running: RunnerProcess, how: string): void {
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

  private stop(): void {
    const running = this.running;
    this.running = undefined;
    running?.stop();
  }
}

function formatLog({ level, message }: LogParams): string {
  return level === 'info' ? message : `[${level}] ${message}`;
}

/** Shapes the errors callers see: cancellation as VS Code's, a lost runner with its last words. */
function translateError(err: unknown, running: RunnerProcess): unknown {
  if (!(err instanceof ResponseError)) return err;
  if (err.code === RunnerErrorCode.Cancelled) return new vscode.CancellationError();
  if (err.code === ErrorCodes.PendingResponseRejected) {
    // killed by restart() because a cancelled job did not stop: that job was cancelled all the same
    if (running.stopReason) return new vscode.CancellationError();
    return new Error(`the Pinpoint runner stopped before answering: ${running.lastStderrLine || 'nothing on stderr'}`);
  }
  return err;
}
