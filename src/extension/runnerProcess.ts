import * as childProcess from 'node:child_process';
import * as readline from 'node:readline';
import {
  CancellationTokenSource,
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { ROOT_OPTION, RUNNER_ENV } from '../protocol/protocol';

/**
 * One runner process (`dist/runner.js serve`) and the JSON-RPC connection to it. It uses nothing of VS Code, so that
 * it can be tested on its own; RunnerClient decides when one starts and what the user is told when it stops.
 */

export interface RunnerLaunch {
  /** the Node.js executable: VS Code's own, run as Node, unless the settings name another */
  node: string;
  script: string;
  /** what the runner may read and write under (`--root`) */
  roots: string[];
}

export interface RunnerEvents {
  onStderrLine(line: string): void;
  /** when the process ended, or could not start; `how` says which */
  onStopped(how: string): void;
}

export interface RequestOptions {
  token?: CancellationToken;
  /** ms to wait for the answer; without it, as long as it takes (jobs, which report progress and can be stopped) */
  within?: number;
}

export class RunnerProcess {
  readonly connection: MessageConnection;
  /** the runner's last words on stderr, for the message shown when it stops */
  lastStderrLine = '';
  /** why the extension stopped it, when it did */
  stopReason?: string;
  private readonly child: childProcess.ChildProcessWithoutNullStreams;

  constructor(launch: RunnerLaunch, events: RunnerEvents) {
    this.child = childProcess.spawn(launch.node, serveArgs(launch), {
      // VS Code's own executable is Electron; this makes it behave as plain Node
      env: { ...process.env, ...RUNNER_ENV, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.connection = createMessageConnection(new StreamMessageReader(this.child.stdout), new StreamMessageWriter(this.child.stdin));
    readline.createInterface({ input: this.child.stderr }).on('line', (line) => {
      if (line.trim() !== '') this.lastStderrLine = line;
      events.onStderrLine(line);
    });
    // 'close' rather than 'exit': it comes after stderr is drained, so the last line is the runner's last words
    this.child.on('close', (code, signal) => events.onStopped(`exit code ${code} / signal ${signal}`));
    // e.g. pinpoint.runner.nodePath names no executable
    this.child.on('error', (err) => events.onStopped(err.message));
    this.connection.listen();
  }

  /**
   * Sends a request, cancelled when `token` is, or when `within` ms pass without an answer: it then fails saying
   * so, where a runner that never answers would leave its caller waiting for ever.
   */
  async request<R>(method: string, send: (token: CancellationToken) => Promise<R>, options: RequestOptions = {}): Promise<R> {
    const source = new CancellationTokenSource();
    if (options.token?.isCancellationRequested) source.cancel();
    const link = options.token?.onCancellationRequested(() => source.cancel());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      if (options.within === undefined) return;
      const seconds = options.within / 1000;
      timer = setTimeout(() => {
        source.cancel();
        reject(new Error(`the Pinpoint runner did not answer ${method} within ${seconds} s, so the request was cancelled`));
      }, options.within);
    });
    try {
      return await Promise.race([send(source.token), timedOut]);
    } finally {
      clearTimeout(timer);
      link?.dispose();
      source.dispose();
    }
  }

  /** Disposing the connection rejects the requests still waiting on this runner. */
  stop(signal?: NodeJS.Signals): void {
    this.connection.dispose();
    this.child.kill(signal);
  }
}

export function serveArgs({ script, roots }: Pick<RunnerLaunch, 'script' | 'roots'>): string[] {
  return [script, 'serve', ...roots.flatMap((root) => [ROOT_OPTION, root])];
}
