import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { HEADS_FILE, type HeadsFile, type ItemScores, type LocateMethod, type LocateMetric, type Positions } from '../../../src/protocol/heads';
import { isContrastItem, isSuggestionItem, type EvalItem } from '../../../src/protocol/evaluationItem';
import { fileWeights, writeFileAtomic } from '../model/weightFile';
import { leftPadded, tokenFeeds } from '../runtime/batch';
import type { Model } from '../runtime/model';
import { bucket } from '../training/lossBatch';
import { buildAttributionGraph } from './attributionGraph';
import { metricGradient, metricValue, PAPER_RATIO_NOTE, relativeChange } from './metric';
import { activationPatching, pathPatching, type PatchedLogits } from './pathPatching';
import { leftOut, localisationPair, type ChallengePairSettings, type PromptPair } from './patchingPrompts';
import { defaultTopK, rankHeads, spearman } from './ranking';

/** `challenge`, `counterfactual` and `targets` localise the challenge; contrast pairs bring their own. */
export interface LocateOptions extends ChallengePairSettings {
  method: LocateMethod;
  positions: Positions;
  metric: LocateMetric;
  topK?: number;
}

interface ItemResult {
  id: string;
  reference: number;
  /** [L][H] metric patched - metric reference */
  effects: number[][];
}

/**
 * Localisation scores of every head over the items, as heads.json holds them. `onProgress` counts item passes: one
 * per item, two when an approximate method is compared with path patching.
 */
/** heads.json in `out`, written atomically: the one writer of the format (src/protocol/heads.ts). */
export function writeHeadsFile(out: string, heads: HeadsFile): string {
  const file = path.join(out, HEADS_FILE);
  writeFileAtomic(file, JSON.stringify(heads, null, 1));
  return file;
}

export async function locate(
  model: Model,
  items: EvalItem[],
  o: LocateOptions,
  onProgress: (done: number, total: number) => void,
): Promise<HeadsFile> {
  const started = Date.now();
  const { numLayers: L, numHeads: H } = model.config;
  const skipped: { id: string; reason: string }[] = [];
  const pairs: Scored[] = [];
  const localised = items.filter((item) => leftOut(item) === null);
  if (items.length > 0 && localised.length === 0) throw new Error(`no item could be localised: ${leftOut(items[0])}, and the file has none`);
  for (const item of localised) {
    try {
      const { pair, targets, targetIds } = localisationPair(model.tokenizer, item, o);
      pairs.push({ pair, targets: targetIds, words: targets });
    } catch (e) {
      skipped.push({ id: item.id, reason: (e as Error).message });
    }
  }
  // each method runs over every item before the next: each has a graph of its own, which takes the other's place
  const total = pairs.length * (o.method === 'path' ? 1 : 2);
  let done = 0;
  const results: ItemResult[] = [];
  const scoredPairs: Scored[] = [];
  const attributionTokens = bucket(Math.max(1, ...pairs.map(({ pair }) => Math.max(pair.reference.length, pair.counterfactual.length))), 32);
  for (const scored of pairs) {
    try {
      results.push(await scoreItem(model, scored, o, o.method, attributionTokens));
      scoredPairs.push(scored);
    } catch (e) {
      skipped.push({ id: scored.pair.id, reason: (e as Error).message });
    }
    onProgress(++done, total);
  }
  const pathResults: ItemResult[] = [];
  if (o.method !== 'path') {
    for (const scored of scoredPairs) {
      pathResults.push(await scoreItem(model, scored, o, 'path', attributionTokens));
      onProgress(++done, total);
    }
  }
  if (results.length === 0)
    throw new Error(
      `no item could be localised: ${skipped
        .map((s) => `${s.id}: ${s.reason}`)
        .slice(0, 3)
        .join('; ')}`,
    );
  const last = scoredPairs[scoredPairs.length - 1];
  const behaviour = localisedBehaviour(items);
  const ownPairs = behaviour !== 'challenge';
  const scores = meanOver(results, L, H, (r, l, h) => relativeChange(r.reference + r.effects[l][h], r.reference));
  const ranking = rankHeads(scores);
  const topK = o.topK ?? defaultTopK(L, H);
  const placement = await model.residentPlacement();
  return {
    format: 'pinpoint-heads/1',
    method: o.method,
    positions: o.method === 'activation' ? o.positions : 'last',
    metric: o.metric,
    behaviour,
    notes: [...(o.metric === 'paper_ratio' ? [PAPER_RATIO_NOTE] : []), ...(ownPairs ? [OWN_PAIRS_NOTE[behaviour]] : [])],
    targets: { a: { text: last.words[0], id: last.targets[0] }, b: { text: last.words[1], id: last.targets[1] } },
    challenge: ownPairs ? '' : o.challenge,
    counterfactual: ownPairs ? '' : o.counterfactual,
    layers: L,
    heads: H,
    scores,
    effects: meanOver(results, L, H, (r, l, h) => r.effects[l][h]),
    ranking,
    topK,
    selected: ranking.slice(0, topK).map(({ layer, head }) => ({ layer, head })),
    items: results.map((r, i): ItemScores => ({
      id: r.id,
      // an item that is its own pair compares its own targets, which the Head Map names beside its effects
      ...(ownPairs && { targets: scoredPairs[i].words }),
      reference: r.reference,
      scores: r.effects.map((row) => row.map((e) => relativeChange(r.reference + e, r.reference))),
    })),
    skipped,
    comparison: o.method === 'path' ? undefined : comparison(scores, pathResults, L, H),
    model: { dir: model.checkpoint.dir, weightsSha256: model.weightsSha256 },
    provider: placement.provider,
    seconds: (Date.now() - started) / 1000,
  };
}

function comparison(scores: number[][], pathResults: ItemResult[], L: number, H: number): HeadsFile['comparison'] {
  const path = meanOver(pathResults, L, H, (r, l, h) => relativeChange(r.reference + r.effects[l][h], r.reference));
  return { method: 'path', scores: path, spearman: spearman(scores.flat(), path.flat()) };
}

function meanOver(results: ItemResult[], L: number, H: number, value: (r: ItemResult, l: number, h: number) => number): number[][] {
  return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => results.reduce((s, r) => s + value(r, l, h), 0) / results.length));
}

interface Scored {
  pair: PromptPair;
  /** the metric's two target tokens */
  targets: [number, number];
  /** the words they start */
  words: [string, string];
}

/** What was localised: a file holds one kind of item (evaluationFile.ts), the questions' opinion items skipped. */
function localisedBehaviour(items: EvalItem[]): 'challenge' | 'contrast' | 'suggestion' {
  if (items.some(isContrastItem)) return 'contrast';
  return items.some(isSuggestionItem) ? 'suggestion' : 'challenge';
}

/** The behaviours whose items bring their own prompt pairs and targets, and what heads.json's fields then mean. */
const OWN_PAIRS_NOTE = {
  contrast:
    'contrast pairs: each item is its own prompt and counterfactual, compared on its own targets; "targets" names the last item\'s, and "challenge" and "counterfactual" are empty',
  suggestion:
    'answer sycophancy: each line suggesting the incorrect answer is compared with its plain question, on the first tokens of its incorrect (a) and correct (b) answers; "targets" names the last item\'s, and "challenge" and "counterfactual" are empty',
};

async function scoreItem(
  model: Model,
  { pair, targets }: Scored,
  o: LocateOptions,
  method: LocateMethod,
  attributionTokens: number,
): Promise<ItemResult> {
  if (method === 'attribution') return attribution(model, pair, targets, o.metric, attributionTokens);
  const logits = method === 'path' ? await pathPatching(model, pair, targets) : await activationPatching(model, pair, targets, o.positions);
  return effectsOf(pair.id, logits, model.config.numLayers, model.config.numHeads, o.metric);
}

/** Per-head metric changes from the target logits of the patched runs. */
export function effectsOf(id: string, logits: PatchedLogits, L: number, H: number, metric: LocateMetric): ItemResult {
  const reference = metricValue(metric, logits.reference[0], logits.reference[1]);
  const effects = Array.from({ length: L }, (_, l) =>
    Array.from({ length: H }, (_, h) => {
      const at = (l * H + h) * 2;
      return metricValue(metric, logits.patched[at], logits.patched[at + 1]) - reference;
    }),
  );
  return { id, reference, effects };
}

async function attribution(model: Model, pair: PromptPair, targets: [number, number], metric: LocateMetric, tokens: number): Promise<ItemResult> {
  if (model.dtype !== 'float32') throw new Error('attribution patching runs in float32');
  const { session } = await model.session(
    `attribution ${tokens}`,
    () => buildAttributionGraph(model.config, fileWeights(model.weights), tokens),
    async (s) => {
      await s.run(attributionFeeds(model, [[model.padId], [model.padId]], tokens, new Float32Array(2 * model.config.vocabSize)));
    },
    { prepack: false, measure: 'always' },
  );
  const V = model.config.vocabSize;
  const first = await session.run(attributionFeeds(model, [pair.reference, pair.counterfactual], tokens, new Float32Array(2 * V)));
  const logits = first.logits.data as Float32Array;
  const [ga, gb] = metricGradient(metric, logits[targets[0]], logits[targets[1]]);
  const seed = new Float32Array(2 * V);
  seed[targets[0]] = ga;
  seed[targets[1]] = gb;
  const estimate = (await session.run(attributionFeeds(model, [pair.reference, pair.counterfactual], tokens, seed))).attribution.data as Float32Array;
  const { numLayers: L, numHeads: H } = model.config;
  return {
    id: pair.id,
    reference: metricValue(metric, logits[targets[0]], logits[targets[1]]),
    effects: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => estimate[l * H + h])),
  };
}

/** Both rows left-padded to the graph's fixed length. */
function attributionFeeds(model: Model, prompts: number[][], tokens: number, seed: Float32Array): Record<string, ort.Tensor> {
  return {
    ...tokenFeeds(leftPadded(prompts, model.padId, tokens)),
    metric_grad: new ort.Tensor('float32', seed, [2, model.config.vocabSize]),
  };
}
