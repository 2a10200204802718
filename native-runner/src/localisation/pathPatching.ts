import * as ort from 'onnxruntime-node';
import type { Positions } from '../../../src/protocol/heads';
import type { RowIntervention } from '../interventions/interventions';
import { fileWeights } from '../model/weightFile';
import { leftPadded, tokenFeeds } from '../runtime/batch';
import { forward } from '../runtime/forward';
import type { Model } from '../runtime/model';
import { buildPathPatchingGraph, PATH_PATCHING } from './pathPatchingGraph';
import type { PromptPair } from './patchingPrompts';

/**
 * Target-token logits of every head's patched run, for one prompt pair: `reference` [K] from the unpatched
 * reference prompt and `patched` [L*H*K], row l*H + h for head (l, h).
 */
export interface PatchedLogits {
  reference: Float32Array;
  patched: Float32Array;
}

/** Path patching of all heads in one run of the path-patching graph (pathPatchingGraph.ts). */
export async function pathPatching(model: Model, pair: PromptPair, targets: number[]): Promise<PatchedLogits> {
  const run = (s: ort.InferenceSession, prompts: number[][], ids: number[]) =>
    s.run({
      ...tokenFeeds(leftPadded(prompts, model.padId)),
      [PATH_PATCHING.targets]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [ids.length]),
    });
  const { session } = await model.session(
    'path-patching',
    () => buildPathPatchingGraph(model.config, fileWeights(model.weights), model.dtype),
    async (s) => {
      await run(s, [[model.padId], [model.padId]], [model.padId]);
    },
    { prepack: false, measure: 'always' },
  );
  const out = await run(session, [pair.reference, pair.counterfactual], targets);
  return { reference: out[PATH_PATCHING.reference].data as Float32Array, patched: out[PATH_PATCHING.patched].data as Float32Array };
}

/**
 * The reference method: one full forward pass per head with the runtime's interventions (rows: reference,
 * counterfactual, patched), `path` holding later layers' attention inputs at the reference's values.
 */
export async function naivePatching(
  model: Model,
  pair: PromptPair,
  targets: number[],
  kind: 'path' | 'activation',
  positions: Positions,
): Promise<PatchedLogits> {
  const { numLayers: L, numHeads: H } = model.config;
  const patched = new Float32Array(L * H * targets.length);
  let reference = new Float32Array(targets.length);
  for (let layer = 0; layer < L; layer++) {
    for (let head = 0; head < H; head++) {
      const rows = await interventionRuns(model, pair, targets, [variant(kind, positions, layer, head, L)]);
      reference = rows.slice(0, targets.length);
      patched.set(rows.subarray(2 * targets.length), (layer * H + head) * targets.length);
    }
  }
  return { reference, patched };
}

/** Activation patching of every head, exact: full forward passes, `chunk` heads per batch. */
export async function activationPatching(
  model: Model,
  pair: PromptPair,
  targets: number[],
  positions: Positions,
  chunk = 16,
): Promise<PatchedLogits> {
  const { numLayers: L, numHeads: H } = model.config;
  const all = Array.from({ length: L * H }, (_, i) => variant('activation', positions, Math.floor(i / H), i % H, L));
  const patched = new Float32Array(L * H * targets.length);
  let reference = new Float32Array(targets.length);
  for (let start = 0; start < all.length; start += chunk) {
    const rows = await interventionRuns(model, pair, targets, all.slice(start, start + chunk));
    reference = rows.slice(0, targets.length);
    patched.set(rows.subarray(2 * targets.length), start * targets.length);
  }
  return { reference, patched };
}

function variant(kind: 'path' | 'activation', positions: Positions, layer: number, head: number, layers: number): RowIntervention {
  const row: RowIntervention = { patch: { from: 1, heads: [{ layer, head }], positions } };
  if (kind === 'path') row.hold = { from: 0, layers: Array.from({ length: layers - layer - 1 }, (_, i) => layer + 1 + i) };
  return row;
}

/** Target logits [(2 + variants) * K] of one batch: reference, counterfactual, then the variants. */
async function interventionRuns(model: Model, pair: PromptPair, targets: number[], variants: RowIntervention[]): Promise<Float32Array> {
  const rows: RowIntervention[] = [{}, {}, ...variants];
  const prompts = rows.map((_, i) => (i === 1 ? pair.counterfactual : pair.reference));
  const reads = prompts.map((p, row) => ({ row, position: p.length - 1, ids: targets }));
  const { logitsAt } = await forward(model, { prompts, reads, interventions: rows });
  return Float32Array.from(logitsAt.flat());
}
