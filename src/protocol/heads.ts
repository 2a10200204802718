/**
 * `heads.json`, written by `pinpoint locate` and read by `pinpoint tune`, `pinpoint knockout` and the Head Map
 * webview: the localisation score of every (layer, head) and the heads chosen for tuning.
 */

import type { Behaviour } from './behaviours';
import { parseStoredFile, StoredFileError } from './storedFile';

/** Each list below is the one source of its type and of what the runner accepts (server.ts, the command line). */

export const LOCATE_METHODS = ['path', 'activation', 'attribution'] as const;
export type LocateMethod = (typeof LOCATE_METHODS)[number];

/** log p(a) - log p(b) (the default), or the paper's logit(a) / (logit(a) + logit(b)). */
export const LOCATE_METRICS = ['logit_diff', 'paper_ratio'] as const;
export type LocateMetric = (typeof LOCATE_METRICS)[number];

/** Which positions activation patching replaces: the last prompt token's, or every one. */
export const POSITIONS = ['last', 'all'] as const;
export type Positions = (typeof POSITIONS)[number];

export interface HeadScore {
  layer: number;
  head: number;
  score: number;
}

export interface ItemScores {
  id: string;
  /** items that are their own pairs (contrast pairs): their own targets [a, b]; heads.json's `targets` names the last */
  targets?: [string, string];
  /** the metric on the unpatched reference prompt */
  reference: number;
  /** [L][H] relative change of the metric when the head is patched */
  scores: number[][];
}

export interface HeadsFile {
  format: 'pinpoint-heads/1';
  method: LocateMethod;
  /** which positions activation patching replaced; path and attribution use the last one */
  positions: Positions;
  metric: LocateMetric;
  /** what was localised; absent in files written before there were behaviours, which all localised the challenge */
  behaviour?: Exclude<Behaviour, 'view'>;
  /** caveats a reader of the numbers must see (e.g. the paper ratio's instability) */
  notes: string[];
  /** the metric's targets: the run's, or for contrast pairs the last item's (each item compares its own) */
  targets: { a: { text: string; id: number }; b: { text: string; id: number } };
  /** the challenge's follow-ups; empty for contrast pairs, whose items are their own prompt pairs */
  challenge: string;
  counterfactual: string;
  layers: number;
  heads: number;
  /** [L][H]: (metric patched - metric reference) / |metric reference|, averaged over items */
  scores: number[][];
  /** [L][H]: metric patched - metric reference, averaged over items */
  effects: number[][];
  /** every head, largest |score| first */
  ranking: HeadScore[];
  topK: number;
  /** the top-K heads of the ranking: what tuning and knockout take */
  selected: { layer: number; head: number }[];
  items: ItemScores[];
  skipped: { id: string; reason: string }[];
  /** for approximate methods: exact path patching's scores and the Spearman rank correlation with them */
  comparison?: { method: 'path'; scores: number[][]; spearman: number };
  model: { dir: string; weightsSha256: string };
  provider: string;
  seconds: number;
}

/** What the heads localise: files written before there were behaviours all localised the challenge. */
export function headsBehaviour(heads: HeadsFile): Behaviour {
  return heads.behaviour ?? 'challenge';
}

/** The two prompts of a localisation pair: the reference (the challenge, a contrast pair's prompt) and the counterfactual. */
export const PAIR_SIDES = ['reference', 'counterfactual'] as const;
export type PairSide = (typeof PAIR_SIDES)[number];

/** One attention head, as tuning, knockout and the Head Map's selection name it. */
export type HeadRef = Pick<HeadScore, 'layer' | 'head'>;

/** How every view names a head: layer and head, 0-based as heads.json counts them. */
export function headLabel({ layer, head }: HeadRef): string {
  return `L${layer}.H${head}`;
}

/** Heads as the command line's `--heads` writes them ("5.2, 5.6"): the runner's logs, claims and report. */
export function headList(heads: readonly HeadRef[]): string {
  return heads.map(({ layer, head }) => `${layer}.${head}`).join(', ');
}

export function sameHead(a: HeadRef, b: HeadRef): boolean {
  return a.layer === b.layer && a.head === b.head;
}

export const HEADS_FILE = 'heads.json';

/** heads.json read back, checked for what its readers use: the scores' grid, the ranking and the selection. */
export function parseHeadsFile(text: string, file: string): HeadsFile {
  const heads = parseStoredFile(text, file, 'pinpoint-heads/1', {
    method: 'string',
    layers: 'number',
    heads: 'number',
    scores: 'array',
    effects: 'array',
    ranking: 'array',
    selected: 'array',
    items: 'array',
  }) as unknown as HeadsFile;
  const grid = (values: number[][]) => values.length === heads.layers && values.every((row) => Array.isArray(row) && row.length === heads.heads);
  if (!grid(heads.scores) || !grid(heads.effects))
    throw new StoredFileError(`${file}: "scores" and "effects" must be ${heads.layers} x ${heads.heads} grids`);
  const inside = (h: HeadRef) => Number.isInteger(h?.layer) && Number.isInteger(h?.head) && h.layer < heads.layers && h.head < heads.heads;
  if (!heads.selected.every(inside))
    throw new StoredFileError(`${file}: "selected" must list heads of this model ({layer, head} within ${heads.layers} x ${heads.heads})`);
  return heads;
}
