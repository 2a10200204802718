import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HeadRef } from '../protocol/heads';

/**
 * The runs of this workspace that views and later commands build on, remembered across reloads: the latest
 * evaluation of each file (and items run again on their own), the latest heads.json, the latest tuning run and its
 * knockout check. Only folders are kept here; what they hold is read from disk.
 */

export interface EvaluationRecord {
  /** the run's folder */
  out: string;
  /** items run again on their own since: item id → that run's folder */
  items: Record<string, string>;
}

export interface TuningRecord {
  run: string;
  model: string;
  data: string;
  heads: HeadRef[];
  /** the newest checkpoint, once the run has written one */
  checkpoint?: string;
}

export interface HeadsRecord {
  /** heads.json */
  file: string;
  /** the evaluation file it was localised on */
  data: string;
}

export interface KnockoutRecord {
  /** the heads.json whose heads were knocked out */
  headsFile: string;
  /** knockout.json */
  file: string;
}

const EVALUATIONS = 'pinpoint.evaluations';
const HEADS = 'pinpoint.heads';
const TUNING = 'pinpoint.tuning';
const KNOCKOUT = 'pinpoint.knockout';

export class WorkspaceRuns implements vscode.Disposable {
  private readonly evaluationsChanged = new vscode.EventEmitter<string>();

  /** Fires with the evaluation file whose results changed. */
  readonly onDidChangeEvaluation = this.evaluationsChanged.event;

  constructor(private readonly state: vscode.Memento) {}

  evaluation(file: string): EvaluationRecord | undefined {
    return this.evaluations()[path.resolve(file)];
  }

  evaluatedFiles(): string[] {
    return Object.keys(this.evaluations());
  }

  async setEvaluation(file: string, out: string): Promise<void> {
    await this.updateEvaluation(file, () => ({ out, items: {} }));
  }

  async setItemRun(file: string, item: string, out: string): Promise<void> {
    await this.updateEvaluation(file, (record) => ({ out: record?.out ?? out, items: { ...record?.items, [item]: out } }));
  }

  heads(): HeadsRecord | undefined {
    return this.state.get<HeadsRecord>(HEADS);
  }

  setHeads(record: HeadsRecord): Thenable<void> {
    return this.state.update(HEADS, record);
  }

  tuning(): TuningRecord | undefined {
    return this.state.get<TuningRecord>(TUNING);
  }

  setTuning(record: TuningRecord): Thenable<void> {
    return this.state.update(TUNING, record);
  }

  knockout(): KnockoutRecord | undefined {
    return this.state.get<KnockoutRecord>(KNOCKOUT);
  }

  setKnockout(record: KnockoutRecord): Thenable<void> {
    return this.state.update(KNOCKOUT, record);
  }

  dispose(): void {
    this.evaluationsChanged.dispose();
  }

  private evaluations(): Record<string, EvaluationRecord> {
    return this.state.get<Record<string, EvaluationRecord>>(EVALUATIONS, {});
  }

  private async updateEvaluation(file: string, update: (record: EvaluationRecord | undefined) => EvaluationRecord): Promise<void> {
    const key = path.resolve(file);
    const all = this.evaluations();
    await this.state.update(EVALUATIONS, { ...all, [key]: update(all[key]) });
    this.evaluationsChanged.fire(key);
  }
}
