import * as childProcess from 'node:child_process';
import * as readline from 'node:readline';
import * as vscode from 'vscode';
import {
  createMessageConnection, ErrorCodes, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  GenerateRequest, LoadModelRequest, LogNotification, RunnerErrorCode, RuntimeInfoRequest,
  type GenerateParams, type GenerateResult, type LoadModelParams, type LogParams, type ModelInfo, type RuntimeInfo,
} from '../protocol/protocol';

/**
 * The runner process (`dist/runner.js serve`) and the JSON-RPC connection to it. The runner is a separate process
 * because onnxruntime-node must never load in the extension host: a native crash there would take every extension
 * down with it. It starts on the first request and again on the next request after a crash.
 */

const MAX_RESTARTS_PER_MINUTE = 3;

interface Running {
  process: childProcess.ChildProcess;
  connection: MessageConnection;
  /** the runner's last words on stderr, for the message shown when it stops */
  lastStderrLine: string;
}

export class RunnerClient implements vscode.Disposable {
  private running: Running | undefined;
  private crashTimes: number[] = [];
  private gaveUp = false;
  private disposed = false;
  private readonly didRestart = new vscode.EventEmitter<void>();

  /** Fires when the runner stopped unexpectedly, taking its loaded model with it. */
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
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const running: Running = { process: child, connection, lastStderrLine: '' };
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      this.output.appendLine(line);
      if (line.trim() !== '') running.lastStderrLine = line;
    });
    connection.onNotification(LogNotification, (params) => this.output.appendLine(formatLog(params)));
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
    const now = Date.now();
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < 60_000), now];
    this.gaveUp = this.crashTimes.length > MAX_RESTARTS_PER_MINUTE;
    const next = this.gaveUp
      ? `It stopped ${this.crashTimes.length} times within a minute, so it stays stopped until the window is reloaded.`
      : 'Restarting it.';
    const lastWords = running.lastStderrLine || 'nothing on stderr';
    void vscode.window.showErrorMessage(`Pinpoint runner stopped (${how}): ${lastWords}. ${next}`);
    this.didRestart.fire();
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
    return new Error(`the Pinpoint runner stopped before answering: ${running.lastStderrLine || 'nothing on stderr'}`);
  }
  return err;
}
