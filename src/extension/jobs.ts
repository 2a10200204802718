import * as vscode from 'vscode';
import type { JobProgress } from '../protocol/jobs';
import type { OnJobProgress, RunnerClient } from './runnerClient';
import type { StatusBar } from './statusBar';

/**
 * The user's long jobs (an evaluation, a localisation, a tuning run, a comparison of two evaluations): one at a
 * time, as the runner runs one at a time, each under a cancellable progress notification and in the status bar.
 * Stop Job (or the notification's Cancel) cancels the runner's request; a job still running after a grace period
 * (inside one long batch, say) is ended by restarting the runner, since what it finished is on disk already.
 */

const STOP_GRACE_MS = 10_000;

export interface JobContext {
  /** for each runner request the job makes */
  token: vscode.CancellationToken;
  onProgress: OnJobProgress;
}

interface Running {
  title: string;
  source: vscode.CancellationTokenSource;
}

export class Jobs implements vscode.Disposable {
  private running: Running | undefined;

  constructor(
    private readonly runner: RunnerClient,
    private readonly statusBar: StatusBar,
  ) {}

  get current(): string | undefined {
    return this.running?.title;
  }

  /**
   * Runs `work` as the job `title`. Resolves with its result, or undefined when it was stopped or failed; the user
   * is told either way, so callers only act on a result.
   */
  async run<R>(title: string, work: (context: JobContext) => Promise<R>): Promise<R | undefined> {
    if (this.running) {
      void vscode.window.showWarningMessage(`Pinpoint is running "${this.running.title}". Stop it (Pinpoint: Stop Job) or wait for it to finish.`);
      return undefined;
    }
    const running: Running = { title, source: new vscode.CancellationTokenSource() };
    this.running = running;
    this.statusBar.setJob(title);
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Pinpoint: ${title}`, cancellable: true },
        (progress, cancelButton) => {
          cancelButton.onCancellationRequested(() => this.stop());
          return work(this.context(running, progress));
        },
      );
    } catch (err) {
      if (err instanceof vscode.CancellationError) {
        void vscode.window.showInformationMessage(`Pinpoint: stopped "${title}". What it finished is kept, and running it again resumes from there.`);
      } else {
        void vscode.window.showErrorMessage(`Pinpoint: ${title} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return undefined;
    } finally {
      running.source.dispose();
      this.running = undefined;
      this.statusBar.setJob(undefined);
    }
  }

  /** Stop Job: cancels the running job, and restarts the runner if the job is still running after a grace period. */
  stop(): boolean {
    const running = this.running;
    if (!running || running.source.token.isCancellationRequested) return false;
    running.source.cancel();
    this.statusBar.setJob(`stopping ${running.title}`);
    setTimeout(() => {
      if (this.running === running) this.runner.restart(`"${running.title}" did not stop within ${STOP_GRACE_MS / 1000} s of being cancelled`);
    }, STOP_GRACE_MS);
    return true;
  }

  dispose(): void {
    this.running?.source.cancel();
  }

  private context(running: Running, progress: vscode.Progress<{ message?: string; increment?: number }>): JobContext {
    let reported = 0;
    return {
      token: running.source.token,
      onProgress: (p: JobProgress) => {
        // withProgress adds increments up and cannot go back: a job of several stages (each counted from zero)
        // moves the bar once a stage passes the furthest point reached
        const percent = p.total > 0 ? (100 * p.done) / p.total : 0;
        progress.report({ message: p.message, increment: Math.max(0, percent - reported) });
        reported = Math.max(reported, percent);
        this.statusBar.setJob(`${running.title} · ${p.message}`);
      },
    };
  }
}
