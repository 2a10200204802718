import type { RowIntervention } from '../interventions/interventions';
import { forward, readsPerRun, type Read } from '../runtime/forward';
import type { Model } from '../runtime/model';

/**
 * Log-probabilities read from forward passes: of chosen tokens right after a prompt, and of every token of a
 * continuation (what greedy generation produced) plus, at one position, of chosen alternatives. A continuation is
 * scored in one pass over the prompt followed by the continuation, with logits computed only at the continuation's
 * positions and log-probabilities taken inside the graph, so no [T, V] logits of a long prompt are materialised
 * and only the numbers asked for leave ONNX Runtime.
 */

/** For each prompt, the log-probabilities of its `tokens` as the next token. */
export async function nextTokenLogprobs(model: Model, prompts: number[][], tokens: number[][], intervention?: RowIntervention): Promise<number[][]> {
  const reads = prompts.map((p, row): Read => ({ row, position: p.length - 1, ids: tokens[row] }));
  return (await forward(model, { prompts, reads, interventions: intervention && prompts.map(() => intervention) })).logprobs;
}

export interface ContinuationToScore {
  prompt: number[];
  /** at least one token */
  continuation: number[];
  /** alternatives to read at one position of the continuation */
  probe: { position: number; tokens: number[] } | null;
}

export interface ContinuationScores {
  /** log-probability of each continuation token given everything before it */
  tokenLogprobs: number[];
  probe: number[] | null;
}

export async function scoreContinuations(model: Model, rows: ContinuationToScore[], intervention?: RowIntervention): Promise<ContinuationScores[]> {
  const scores: ContinuationScores[] = [];
  for (const part of partsWithin(rows, readsPerRun(model.config.vocabSize))) {
    scores.push(...(await scorePart(model, part, intervention)));
  }
  return scores;
}

async function scorePart(model: Model, rows: ContinuationToScore[], intervention?: RowIntervention): Promise<ContinuationScores[]> {
  // the distribution of continuation token p is read at prompt position length - 1 + p
  const at = (row: ContinuationToScore, p: number) => row.prompt.length - 1 + p;
  const reads = rows.flatMap((row, r): Read[] => [
    ...row.continuation.map((token, p) => ({ row: r, position: at(row, p), ids: [token] })),
    ...(row.probe ? [{ row: r, position: at(row, row.probe.position), ids: row.probe.tokens }] : []),
  ]);
  const prompts = rows.map((row) => [...row.prompt, ...row.continuation.slice(0, -1)]);
  const { logprobs } = await forward(model, { prompts, reads, interventions: intervention && rows.map(() => intervention) });
  let next = 0;
  return rows.map((row) => {
    const tokenLogprobs = row.continuation.map(() => logprobs[next++][0]);
    return { tokenLogprobs, probe: row.probe ? logprobs[next++] : null };
  });
}

/** Consecutive runs of rows whose reads (one per continuation token, one per probe) stay within `limit`. */
function partsWithin(rows: ContinuationToScore[], limit: number): ContinuationToScore[][] {
  const parts: ContinuationToScore[][] = [];
  let reads = 0;
  for (const row of rows) {
    const n = row.continuation.length + (row.probe ? 1 : 0);
    if (parts.length === 0 || reads + n > limit) {
      parts.push([]);
      reads = 0;
    }
    parts[parts.length - 1].push(row);
    reads += n;
  }
  return parts;
}
