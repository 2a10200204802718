import type { ContrastItemResult, TargetLogits } from '../../../src/protocol/evaluation';
import type { ContrastItem } from '../../../src/protocol/evaluationItem';
import type { ModelTokenizer } from '../checkpoint/tokenizer';
import type { RowIntervention } from '../interventions/interventions';
import { forward } from '../runtime/forward';
import type { Model } from '../runtime/model';
import { firstReplyToken } from './answerTokens';
import { inBatches } from './batching';

/**
 * Contrast pairs: each prompt read once, nothing generated. Per item, the logits of the two targets' first tokens
 * at the last position of the prompt and of the counterfactual; the logit difference a - b is the metric (the
 * softmax normaliser cancels, so it equals log p(a) - log p(b)). The same token ids are read after both prompts,
 * so that the two differences, and localisation's patched runs, compare like with like.
 */

export interface ContrastPrompts {
  /** token ids of the raw prompts, the tokenizer's special tokens (e.g. BOS) added as transformers adds them */
  prompt: number[];
  counterfactual: number[];
  /** [a, b]: the first token of each target after the prompt */
  targetIds: [number, number];
}

export function contrastPrompts(tokenizer: ModelTokenizer, item: ContrastItem): ContrastPrompts {
  const [a, b] = item.answer.targets;
  const targetIds: [number, number] = [firstReplyToken(tokenizer, item.prompt, a), firstReplyToken(tokenizer, item.prompt, b)];
  if (targetIds[0] === targetIds[1]) {
    throw new Error(
      `its targets ${JSON.stringify(a)} and ${JSON.stringify(b)} start with the same token ${targetIds[0]}, so no logit tells them apart`,
    );
  }
  return { prompt: tokenizer.encode(item.prompt), counterfactual: tokenizer.encode(item.counterfactual), targetIds };
}

/** What fails the item before it runs: targets whose first tokens are one and the same. */
export function contrastProblem(tokenizer: ModelTokenizer, item: ContrastItem): string | null {
  try {
    contrastPrompts(tokenizer, item);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

interface Row {
  ids: number[];
  targetIds: [number, number];
}

export async function runContrastProtocol(
  model: Model,
  items: ContrastItem[],
  settings: { batchSize: number; intervention?: RowIntervention },
): Promise<ContrastItemResult[]> {
  const prompts = items.map((item) => contrastPrompts(model.tokenizer, item));
  // rows 2i and 2i + 1: item i's prompt and counterfactual
  const rows = prompts.flatMap((p): Row[] => [
    { ids: p.prompt, targetIds: p.targetIds },
    { ids: p.counterfactual, targetIds: p.targetIds },
  ]);
  const logits = await inBatches(
    rows,
    2 * settings.batchSize,
    (r) => r.ids.length,
    (batch) => targetLogits(model, batch, settings.intervention),
  );
  return items.map((item, i): ContrastItemResult => {
    const prompt = logits[2 * i];
    return {
      id: item.id,
      line: item.line,
      format: item.format,
      dataset: item.dataset,
      kind: 'contrast',
      targets: item.answer.targets,
      targetIds: prompts[i].targetIds,
      prompt,
      counterfactual: logits[2 * i + 1],
      prefersTarget: prompt.logitDiff > 0,
    };
  });
}

/** The targets' logits at each row's last position. */
async function targetLogits(model: Model, rows: Row[], intervention?: RowIntervention): Promise<TargetLogits[]> {
  const { logitsAt } = await forward(model, {
    prompts: rows.map((r) => r.ids),
    reads: rows.map((r, row) => ({ row, position: r.ids.length - 1, ids: r.targetIds })),
    interventions: intervention && rows.map(() => intervention),
  });
  return logitsAt.map(([a, b]) => ({ a, b, logitDiff: a - b }));
}

/** The logits a result holds, which must be finite for it to be kept. */
export function contrastScores(result: ContrastItemResult): [string, number[]][] {
  const values = (t: TargetLogits) => [t.a, t.b];
  return [
    ['its prompt', values(result.prompt)],
    ['its counterfactual', values(result.counterfactual)],
  ];
}
