import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { LOSS_ON, ON_BAD_LINE, SCHEDULES, type LossOn, type OnBadLine, type Schedule, type TuneStep } from '../../../src/protocol/jobs';
import type { HeadRef } from '../../../src/protocol/heads';
import { ADAMW_DEFAULTS } from './adamw';
import { TUNE_MODES, type TuneMode } from './parameters';
import { tune, type TuneConfig } from './tuneRun';
import { choices, count, device, DEVICE_USAGE, dtype, DTYPE_USAGE, nonNegative, oneOf, positive, required, UsageError } from '../cliOptions';

export const TUNE_USAGE = `tune --model <dir> --data <file.jsonl> --out <dir>
    [--heads <heads.json | l.h,l.h,...>] [--mode ${choices(TUNE_MODES)}] [--include-kv]
    [--steps N] [--lr X] [--batch N] [--grad-accum N] [--weight-decay X] [--max-grad-norm X]
    [--schedule ${choices(SCHEDULES)}] [--warmup N] [--seed N] [--save-every N]
    [--loss-on ${choices(LOSS_ON)}] [--on-bad-line ${choices(ON_BAD_LINE)}] ${DEVICE_USAGE} ${DTYPE_USAGE}
    [--resume]`;

/** `pinpoint tune`: progress on stderr, the final checkpoint's folder on stdout. */
export async function tuneCommand(args: string[]): Promise<number> {
  const config = parseTuneArgs(args);
  const result = await tune(config.config, config.resume, (p) => process.stderr.write(`${progressLine(p)}\n`));
  for (const s of result.skipped) process.stderr.write(`skipped ${s.file}:${s.line}: ${s.reason}\n`);
  process.stderr.write(`tuned on ${result.provider}; ${result.skipped.length} bad lines skipped\n`);
  process.stdout.write(`${result.dir}\n`);
  return 0;
}

function progressLine(p: TuneStep): string {
  const eta = p.etaSeconds >= 60 ? `${Math.floor(p.etaSeconds / 60)}m${Math.round(p.etaSeconds % 60)}s` : `${p.etaSeconds.toFixed(0)}s`;
  return `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  grad-norm ${p.gradNorm.toFixed(3)}  ${Math.round(p.tokensPerSecond)} tokens/s  ETA ${eta}`;
}

export function parseTuneArgs(args: string[]): { config: TuneConfig; resume: boolean } {
  const { values: v } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      heads: { type: 'string' },
      mode: { type: 'string', default: 'heads' },
      'include-kv': { type: 'boolean', default: false },
      steps: { type: 'string', default: '100' },
      lr: { type: 'string', default: '1e-4' },
      batch: { type: 'string', default: '8' },
      'grad-accum': { type: 'string', default: '1' },
      'weight-decay': { type: 'string', default: String(ADAMW_DEFAULTS.weightDecay) },
      'max-grad-norm': { type: 'string', default: '1' },
      schedule: { type: 'string', default: 'linear' },
      warmup: { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      'save-every': { type: 'string', default: '50' },
      'loss-on': { type: 'string', default: 'last' },
      'on-bad-line': { type: 'string', default: 'skip' },
      device: { type: 'string', default: 'auto' },
      dtype: { type: 'string', default: 'float32' },
      resume: { type: 'boolean', default: false },
    },
  });
  const mode = oneOf<TuneMode>(v.mode, TUNE_MODES, '--mode');
  if (mode === 'heads' && !v.heads) throw new UsageError('--mode heads needs --heads');
  const steps = count(v.steps!, '--steps');
  return {
    resume: v.resume!,
    config: {
      model: { dir: required(v.model, '--model'), device: device(v.device), dtype: dtype(v.dtype) },
      data: required(v.data, '--data'),
      out: required(v.out, '--out'),
      spec: { mode, heads: mode === 'heads' ? parseHeads(v.heads!) : [], includeKeyValue: v['include-kv']! },
      steps,
      batchSize: count(v.batch!, '--batch'),
      gradAccum: count(v['grad-accum']!, '--grad-accum'),
      adamw: { ...ADAMW_DEFAULTS, lr: positive(v.lr!, '--lr'), weightDecay: nonNegative(v['weight-decay']!, '--weight-decay') },
      schedule: oneOf<Schedule>(v.schedule, SCHEDULES, '--schedule'),
      warmupSteps: nonNegative(v.warmup!, '--warmup'),
      maxGradNorm: nonNegative(v['max-grad-norm']!, '--max-grad-norm'),
      seed: nonNegative(v.seed!, '--seed'),
      saveEvery: count(v['save-every']!, '--save-every'),
      lossOn: oneOf<LossOn>(v['loss-on'], LOSS_ON, '--loss-on'),
      onBadLine: oneOf<OnBadLine>(v['on-bad-line'], ON_BAD_LINE, '--on-bad-line'),
    },
  };
}

/**
 * Heads as `layer.head` pairs separated by commas, or a JSON file: a list of [layer, head] pairs or
 * {layer, head} objects, or an object whose `heads` holds such a list, or heads.json from `pinpoint locate`
 * (its `selected` heads).
 */
export function parseHeads(text: string): HeadRef[] {
  if (fs.existsSync(text)) {
    let value: unknown;
    try {
      value = JSON.parse(fs.readFileSync(text, 'utf8'));
    } catch (e) {
      throw new UsageError(`${text}: not valid JSON (${(e as Error).message})`);
    }
    return headsFromJson(value, text);
  }
  return text.split(',').map((pair) => {
    const m = /^\s*(\d+)\.(\d+)\s*$/.exec(pair);
    if (!m) throw new UsageError(`--heads: "${pair}" is not layer.head (e.g. 12.3), and no file of that name exists`);
    return { layer: Number(m[1]), head: Number(m[2]) };
  });
}

function headsFromJson(value: unknown, file: string): HeadRef[] {
  const object = value as { heads?: unknown; selected?: unknown; format?: unknown };
  const list = Array.isArray(value) ? value : object?.format === 'pinpoint-heads/1' ? object.selected : object?.heads;
  if (!Array.isArray(list) || list.length === 0)
    throw new UsageError(`${file}: expected a non-empty list of heads, {"heads": [...]}, or heads.json from pinpoint locate`);
  return list.map((h, i) => {
    const [layer, head] = Array.isArray(h) ? h : [(h as HeadRef)?.layer, (h as HeadRef)?.head];
    if (!Number.isInteger(layer) || !Number.isInteger(head)) throw new UsageError(`${file}: heads[${i}] is not [layer, head] or {"layer", "head"}`);
    return { layer, head };
  });
}
