import fs from 'node:fs';
import { LATEST_FILE, MANIFEST_FILE, parseLatest, parseManifest, type TuneManifest } from '../../../src/protocol/tuning';
import path from 'node:path';
import type { Checkpoint } from '../checkpoint/checkpoint';
import {
  firstNonFinite,
  readSafetensors,
  readSafetensorsHeader,
  readTensor,
  tensorByteChunks,
  writeSafetensors,
  type TensorToWrite,
} from '../checkpoint/safetensors';
import { writeFileAtomic } from '../model/weightFile';
import { processRunning } from '../outputLock';
import type { AdamWState } from './adamw';
import { writeBlock, type ParamSlice } from './parameters';
import { DivergedError } from './trainer';

/**
 * A tuning run's checkpoints: `<out>/step-<N>/` is a complete Hub checkpoint (config and tokenizer files copied,
 * `model.safetensors` in the source dtype) plus `pinpoint.json` (what was tuned, how, on what),
 * `pinpoint-delta.safetensors` (only the tuned blocks, in float32: applied to the base model they give this
 * model) and the optimizer state for `--resume`. Each is written into a temporary folder renamed into place,
 * and `<out>/latest.json` names the newest complete one, so a crash never leaves a half-written checkpoint.
 */

export const DELTA_FILE = 'pinpoint-delta.safetensors';
/** the optimizer state: what `--resume` needs, no part of the tuned model */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const KEPT = 2;
/** `saveCheckpoint`'s temporary folders, named after the writing process */
const TEMPORARY = /^\.step-\d+\.tmp-(\d+)$/;
const COPIED = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'special_tokens_map.json'];

export interface SavedState {
  params: Map<string, Float32Array>;
  states: Map<string, AdamWState>;
  manifest: TuneManifest;
}

export function saveCheckpoint(out: string, base: Checkpoint, slices: ParamSlice[], saved: SavedState): string {
  checkFinite(slices, saved);
  const name = `step-${saved.manifest.step}`;
  const tmp = path.join(out, `.${name}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  writeHubModel(tmp, base, slices, saved.params);
  writeSafetensors(
    path.join(tmp, DELTA_FILE),
    slices.map((s) => block(s.id, s.shape, saved.params.get(s.id)!)),
    { base_weights_sha256: saved.manifest.base.weightsSha256 },
  );
  writeSafetensors(
    path.join(tmp, OPTIMIZER_FILE),
    slices.flatMap((s) => {
      const state = saved.states.get(s.id)!;
      return [block(`m:${s.id}`, s.shape, state.m), block(`v:${s.id}`, s.shape, state.v)];
    }),
    { adam_steps: JSON.stringify(Object.fromEntries(slices.map((s) => [s.id, saved.states.get(s.id)!.step]))) },
  );
  fs.writeFileSync(path.join(tmp, MANIFEST_FILE), JSON.stringify(saved.manifest, null, 2));
  const final = path.join(out, name);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  writeFileAtomic(path.join(out, LATEST_FILE), JSON.stringify({ step: saved.manifest.step, dir: name }));
  pruneOlder(out, saved.manifest.step);
  return final;
}

/**
 * A step whose loss was finite can still have overflowed in its update (a huge learning rate): its checkpoint would
 * hold NaN, and it would become the run's latest, so it is refused before anything is written.
 */
function checkFinite(slices: ParamSlice[], saved: SavedState): void {
  for (const s of slices) {
    const { m, v } = saved.states.get(s.id)!;
    for (const [kind, values] of [
      ['values', saved.params.get(s.id)!],
      ['first moment', m],
      ['second moment', v],
    ] as const) {
      const at = firstNonFinite('F32', values);
      if (at >= 0) throw new DivergedError(saved.manifest.step, `the update made block ${s.id}'s ${kind} ${values[at]} at element ${at}`);
    }
  }
}

function block(name: string, shape: number[], data: Float32Array): TensorToWrite {
  return { name, dtype: 'F32', shape, data };
}

/**
 * Every tensor of the base model in its stored dtype, read when it is written: the untouched ones as their stored
 * bytes, the tuned ones in float32 with their blocks written in.
 */
function tunedTensors(base: Checkpoint, slices: ParamSlice[], params: Map<string, Float32Array>): TensorToWrite[] {
  return [...base.tensors].map(([name, info]) => {
    const tuned = slices.filter((s) => s.tensor === name);
    const data = () => {
      if (tuned.length === 0) return tensorByteChunks(info);
      const values = readTensor(info);
      for (const s of tuned) writeBlock(values, s, params.get(s.id)!);
      return values;
    };
    return { name, dtype: info.dtype as TensorToWrite['dtype'], shape: info.shape, data };
  });
}

function pruneOlder(out: string, newest: number): void {
  const steps = fs
    .readdirSync(out)
    .flatMap((f) => (/^step-(\d+)$/.exec(f) ? [Number(f.slice(5))] : []))
    .sort((a, b) => b - a);
  for (const step of steps.filter((s) => s !== newest).slice(KEPT - 1)) fs.rmSync(path.join(out, `step-${step}`), { recursive: true, force: true });
}

/**
 * Removes the temporary folders of checkpoints whose writer was killed mid-write, which nothing else would ever
 * remove; a live writer's (another run in the same folder) is left alone.
 */
export function removeStaleTemporaries(out: string): void {
  if (!fs.existsSync(out)) return;
  for (const entry of fs.readdirSync(out)) {
    const pid = TEMPORARY.exec(entry)?.[1];
    if (pid !== undefined && !processRunning(Number(pid))) fs.rmSync(path.join(out, entry), { recursive: true, force: true });
  }
}

/** The newest complete checkpoint of a run, or undefined when there is none yet. */
export function latestCheckpoint(out: string): string | undefined {
  const file = path.join(out, LATEST_FILE);
  if (!fs.existsSync(file)) return undefined;
  return path.join(out, parseLatest(fs.readFileSync(file, 'utf8'), file).dir);
}

export function loadState(dir: string, slices: ParamSlice[]): SavedState {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = parseManifest(fs.readFileSync(manifestFile, 'utf8'), manifestFile);
  const delta = readSafetensorsHeader(path.join(dir, DELTA_FILE));
  const { tensors: optimizer, metadata } = readSafetensors(path.join(dir, OPTIMIZER_FILE));
  const adamSteps = JSON.parse(metadata.adam_steps) as Record<string, number>;
  const tensor = (headers: typeof delta, name: string) => {
    const info = headers.get(name);
    if (!info) throw new Error(`${dir}: the checkpoint has no ${name}; it was made with other tuned blocks`);
    return readTensor(info);
  };
  return {
    manifest,
    params: new Map(slices.map((s) => [s.id, tensor(delta, s.id)])),
    states: new Map(slices.map((s) => [s.id, { step: adamSteps[s.id], m: tensor(optimizer, `m:${s.id}`), v: tensor(optimizer, `v:${s.id}`) }])),
  };
}

/** Writes base + delta as a new Hub checkpoint (the delta's blocks replace the base's). */
export function applyDelta(base: Checkpoint, deltaFile: string, out: string, slices: ParamSlice[]): void {
  const delta = readSafetensorsHeader(deltaFile);
  const params = new Map(
    slices.map((s) => {
      const info = delta.get(s.id);
      if (!info) throw new Error(`${deltaFile}: no block ${s.id}`);
      return [s.id, readTensor(info)];
    }),
  );
  fs.mkdirSync(out, { recursive: true });
  writeHubModel(out, base, slices, params);
}

/** The base checkpoint's config and tokenizer files, and its weights with the blocks written in. */
export function writeHubModel(dir: string, base: Checkpoint, slices: ParamSlice[], params: Map<string, Float32Array>): void {
  for (const file of COPIED) if (fs.existsSync(path.join(base.dir, file))) fs.copyFileSync(path.join(base.dir, file), path.join(dir, file));
  writeSafetensors(path.join(dir, 'model.safetensors'), tunedTensors(base, slices, params), { format: 'pt' });
}
