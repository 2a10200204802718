import type { GraphDtype } from '../model/weightFile';
import type { HeadRef } from '../runtime/interventions';
import type { DeviceRequest, Provider } from '../runtime/session';
import type { BootstrapSettings } from './bootstrap';
import type { MetricsSummary } from './metrics';

/** summary.json: what was run, where, how far it got, and the metrics (README.md, "Results"). */

/** What the results depend on: a run resumes only into an output folder written with the same settings. */
export interface RunSettings {
  model: string;
  dtype: GraphDtype;
  data: string;
  dataSha256: string;
  challenges: string[];
  maxNewTokens: number;
  judge: string | null;
  ablation: { heads: HeadRef[]; valuesSha256: string | null } | null;
}

export interface Summary {
  format: 'pinpoint-eval-summary/1';
  status: 'running' | 'complete';
  settings: RunSettings;
  /** where the graphs ran, as ONNX Runtime placed them */
  device: { requested: DeviceRequest; provider: Provider; judgeProvider: Provider | null };
  data: { items: number; skippedLines: string[] };
  progress: { done: number; total: number };
  /** what decided admissions */
  admissions: 'lexical classifier' | 'judge model';
  /** null while running: intervals are computed once, when the run completes */
  bootstrap: BootstrapSettings | null;
  metrics: MetricsSummary;
}
