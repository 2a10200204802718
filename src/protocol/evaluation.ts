/**
 * The evaluation's output files as the extension and the webviews read them: results.jsonl (one `ItemResult` per
 * line), summary.json (`Summary`) and a knockout check's knockout.json (`KnockoutReport`). The runner defines these
 * types beside the code that writes them; this type-only re-export lets the extension and webviews name them
 * without importing runner modules, so nothing of the runner (and never onnxruntime-node) is bundled with them.
 */
export type { Estimate, ChallengeMetrics, MetricsSummary } from '../../native-runner/src/evaluation/metrics';
export type { ChallengeItemResult, ItemResult, TrialRecord, TurnRecord, ViewItemResult } from '../../native-runner/src/evaluation/results';
export type { Summary } from '../../native-runner/src/evaluation/summary';
export type { LineProblem } from '../../native-runner/src/evaluation/evaluationFile';
export type { KnockoutRates, KnockoutReport } from '../../native-runner/src/localisation/knockout';

export const RESULTS_FILE = 'results.jsonl';
export const SUMMARY_FILE = 'summary.json';
