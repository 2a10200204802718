import type { ModelTokenizer } from '../checkpoint/tokenizer';
import type { RowIntervention } from '../interventions/interventions';
import { forward } from '../runtime/forward';
import { greedyGenerate } from '../runtime/generate';
import type { Model } from '../runtime/model';
import { PATCHING_METHODS, type PatchingMethod, type ReferenceCase } from './referenceCase';

/** One check of a case: a numeric comparison or an exact match. */
export type Check = { max_abs_err: number; pass: boolean } | { match: boolean; pass: boolean };

/**
 * The README's tolerances for float32; float16 graphs are held to 2e-2 on logits, bfloat16 graphs (3 fewer bits of
 * mantissa) to 8 times that.
 */
export const TOLERANCE = { float32: 1e-4, float16: 2e-2, bfloat16: 1.6e-1 } as const;

export function checkTokenizer(tokenizer: ModelTokenizer, c: ReferenceCase): Record<string, Check> {
  const encodings = c.tokenizer.encodings.every(
    (e) => same(tokenizer.encode(e.text), e.ids) && same(tokenizer.tokens(e.text), e.tokens) && tokenizer.decode(e.ids) === e.decoded,
  );
  const chats = c.tokenizer.chats.every((chat) => {
    const text = tokenizer.applyChatTemplate(chat.messages, { addGenerationPrompt: chat.add_generation_prompt });
    return text === chat.text && same(tokenizer.encode(text, { addSpecialTokens: false }), chat.ids);
  });
  return { 'tokenizer.encodings': matched(encodings), 'tokenizer.chats': matched(chats) };
}

/** Logits at every position and every layer's z, from one plain forward pass over the prompt. */
export async function checkForward(model: Model, c: ReferenceCase, tolerance: number): Promise<Record<string, Check>> {
  const ids = c.reference.prompt_ids;
  const everywhere = ids.map((_, position) => ({ row: 0, position }));
  const plain = await forward(model, { prompts: [ids], reads: everywhere.map((p) => ({ ...p, ids: [] })), fetchLogits: true });
  const checks: Record<string, Check> = { logits: compared(plain.logits!, c.reference.logits, tolerance) };
  if (model.dtype === 'float32') {
    const { z } = await forward(model, { prompts: [ids], readZ: everywhere });
    checks.z = compared(concat(z!), c.reference.z, tolerance);
  }
  return checks;
}

/**
 * Every head of every layer patched in one batched run per method: row 0 is the clean prompt, row 1 the corrupt
 * one, and row 2 + l*H + h the clean run with head (l, h) intervened on.
 */
export async function checkPatching(model: Model, c: ReferenceCase, tolerance: number): Promise<Record<string, Check>> {
  const { layers: L, heads: H } = c.reference;
  const checks: Record<string, Check> = {};
  for (const method of PATCHING_METHODS) {
    const rows: RowIntervention[] = [{}, {}];
    for (let layer = 0; layer < L; layer++) for (let head = 0; head < H; head++) rows.push(variant(method, layer, head, L));
    const prompts = rows.map((_, i) => (i === 1 ? c.reference.corrupt_ids : c.reference.prompt_ids));
    const reads = prompts.map((p, row) => ({ row, position: p.length - 1, ids: [] }));
    const { logits } = await forward(model, { prompts, reads, fetchLogits: true, interventions: rows });
    checks[`patching.${method}`] = compared(logits!.subarray(2 * model.config.vocabSize), c.reference.patching_last_logits[method], tolerance);
  }
  return checks;
}

function variant(method: PatchingMethod, layer: number, head: number, layers: number): RowIntervention {
  const heads = [{ layer, head }];
  if (method === 'zero_ablation_all') return { ablate: { heads } };
  const positions = method.endsWith('_last') ? 'last' : 'all';
  const row: RowIntervention = { patch: { from: 1, heads, positions } };
  if (method.startsWith('path_')) row.hold = { from: 0, layers: range(layer + 1, layers) };
  return row;
}

export async function checkGreedy(model: Model, c: ReferenceCase): Promise<Record<string, Check>> {
  const expected = c.reference.greedy_new_ids;
  const [ids] = await greedyGenerate(model, [c.reference.prompt_ids], { maxNewTokens: expected.length, stopAtEos: false });
  return { greedy_new_ids: matched(same(ids, expected)) };
}

function compared(actual: ArrayLike<number>, expected: unknown[], tolerance: number): Check {
  const flat = (expected as number[]).flat(Infinity as 1) as number[];
  if (flat.length !== actual.length) return { max_abs_err: Infinity, pass: false };
  let err = 0;
  for (let i = 0; i < flat.length; i++) err = Math.max(err, Math.abs(actual[i] - flat[i]));
  if (Number.isNaN(err)) err = Infinity;
  return { max_abs_err: err, pass: err <= tolerance };
}

function matched(match: boolean): Check {
  return { match, pass: match };
}

function same<T>(a: T[], b: T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) out.set(p, (offset += p.length) - p.length);
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
