import type { Summary } from '../../../src/protocol/evaluation';
import type { CompareParams, CompareResult, JobProgress, ModelSpec } from '../../../src/protocol/jobs';
import { promptsOf } from '../evaluation/behaviours';
import { readEvaluationFile, type EvaluationFile } from '../evaluation/evaluationFile';
import { runEvaluation } from '../evaluation/runEvaluation';
import { Model } from '../runtime/model';
import { RecordedLogits } from './distributionShift';

/** A comparison as `job/compare` and `pinpoint compare` ask for it. */
export type ComparisonJob = Omit<CompareParams, 'job'>;

export type ComparisonProgress = Pick<JobProgress, 'message' | 'done' | 'total'>;

/**
 * The base and the tuned model through the evaluation, then the mean per-token KL between them over the items'
 * prompts (a question's first prompt, both sides of a contrast pair). One model's weights are in use at a time: the base model's logits are recorded and its session
 * released before the tuned model is loaded (for this job only). `base` is the caller's model of `job.base`, so
 * that the server can use the one it holds; it stays usable (its session is compiled again when next used).
 * `onProgress` is called after every batch and before each KL pass; what it throws stops the job there, and the
 * batches finished stay on disk for a later run to resume.
 */
export async function runComparison(job: ComparisonJob, base: Model, onProgress: (progress: ComparisonProgress) => void): Promise<CompareResult> {
  const data = readEvaluationFile(job.data);
  if (data.items.length === 0) throw new RangeError(`${job.data} has no item that can be run`);
  const baseSummary = await evaluate(job, data, 'base', base, onProgress);
  const prompts = data.items.flatMap((item) => promptsOf(base.tokenizer, item));
  onProgress({ message: `KL shift: the base model's logits over ${prompts.length} prompts`, done: 0, total: 1 });
  const baseLogits = await RecordedLogits.record(base, prompts);
  try {
    await base.dispose();
    const tuned = load(job.tuned);
    try {
      const tunedSummary = await evaluate(job, data, 'tuned', tuned, onProgress);
      onProgress({ message: `KL shift over ${prompts.length} prompts`, done: 0, total: 1 });
      return {
        base: { out: job.out.base, summary: baseSummary },
        tuned: { out: job.out.tuned, summary: tunedSummary },
        klShift: await baseLogits.klOf(tuned),
        prompts: prompts.length,
      };
    } finally {
      await tuned.dispose();
    }
  } finally {
    baseLogits.remove();
  }
}

function load(spec: ModelSpec): Model {
  return Model.load(spec.dir, { device: spec.device, dtype: spec.dtype });
}

async function evaluate(
  job: ComparisonJob,
  data: EvaluationFile,
  side: 'base' | 'tuned',
  model: Model,
  onProgress: (progress: ComparisonProgress) => void,
): Promise<Summary> {
  return runEvaluation({
    model,
    modelDir: job[side].dir,
    judge: null,
    data,
    items: data.items,
    outDir: job.out[side],
    challenges: job.challenges,
    maxNewTokens: job.maxNewTokens,
    batchSize: job.batchSize,
    onProgress: (p) => onProgress({ message: `${side} model: ${p.done}/${p.total} items`, done: p.done, total: p.total }),
  });
}
