import { parseArgs } from 'node:util';
import { headList, LOCATE_METHODS, LOCATE_METRICS, POSITIONS, type HeadsFile } from '../../../src/protocol/heads';
import type { EvalItem } from '../../../src/protocol/evaluationItem';
import type { Device } from '../../../src/protocol/protocol';
import { choices, count, device, DEVICE_USAGE, oneOf, required, UsageError } from '../cliOptions';
import { describeProblem, readEvaluationFile } from '../evaluation/evaluationFile';
import { Model } from '../runtime/model';
import { withOutputLock } from '../outputLock';
import { locate, writeHeadsFile, type LocateOptions } from './locate';
import { DEFAULT_CHALLENGE, DEFAULT_COUNTERFACTUAL, DEFAULT_TARGETS } from './patchingPrompts';

export const LOCATE_USAGE = `locate --model <dir> --data <file.jsonl> --out <dir>
    [--method ${choices(LOCATE_METHODS)}] [--positions ${choices(POSITIONS)}] [--metric ${choices(LOCATE_METRICS)}]
    [--top-k N] [--challenge <text>] [--counterfactual <text>] [--targets <a>,<b>] [--max-items N]
    ${DEVICE_USAGE}`;

/** `pinpoint locate`: writes <out>/heads.json and prints the top heads, with <out> held (outputLock.ts). */
export async function locateCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      method: { type: 'string', default: 'path' },
      positions: { type: 'string', default: 'last' },
      metric: { type: 'string', default: 'logit_diff' },
      'top-k': { type: 'string' },
      challenge: { type: 'string', default: DEFAULT_CHALLENGE },
      counterfactual: { type: 'string', default: DEFAULT_COUNTERFACTUAL },
      targets: { type: 'string', default: DEFAULT_TARGETS.join(',') },
      'max-items': { type: 'string' },
      device: { type: 'string', default: 'auto' },
    },
  });
  const out = required(v.out, '--out');
  const targets = v.targets!.split(',');
  if (targets.length !== 2 || targets.some((t) => t === ''))
    throw new UsageError('--targets must be two words separated by a comma, e.g. Apologies,Yes');
  const evaluation = readEvaluationFile(required(v.data, '--data'));
  for (const p of evaluation.problems) process.stderr.write(`skipped ${describeProblem(p)}\n`);
  const items = v['max-items'] ? evaluation.items.slice(0, count(v['max-items'], '--max-items')) : evaluation.items;
  const options: LocateOptions = {
    method: oneOf(v.method, LOCATE_METHODS, '--method'),
    positions: oneOf(v.positions, POSITIONS, '--positions'),
    metric: oneOf(v.metric, LOCATE_METRICS, '--metric'),
    challenge: v.challenge!,
    counterfactual: v.counterfactual!,
    targets: [targets[0], targets[1]],
    topK: v['top-k'] ? count(v['top-k'], '--top-k') : undefined,
  };
  const model = { dir: required(v.model, '--model'), device: device(v.device) };
  const heads = await withOutputLock(out, 'localisation', () => locateInto(out, model, items, options));
  for (const s of heads.skipped) process.stderr.write(`skipped item ${s.id}: ${s.reason}\n`);
  process.stdout.write(
    `${heads.items.length} items, ${heads.method} patching on ${heads.provider} in ${heads.seconds.toFixed(1)} s; top ${heads.topK}: ${headList(heads.selected)}\n`,
  );
  if (heads.comparison) process.stdout.write(`Spearman rank correlation with exact path patching: ${heads.comparison.spearman.toFixed(3)}\n`);
  return 0;
}

/** Loads the model, locates and writes heads.json: the work done while the folder is held. */
async function locateInto(out: string, spec: { dir: string; device: Device }, items: EvalItem[], options: LocateOptions): Promise<HeadsFile> {
  const model = Model.load(spec.dir, { device: spec.device });
  try {
    const heads = await locate(model, items, options, (done, total) => process.stderr.write(`item ${done}/${total}\n`));
    writeHeadsFile(out, heads);
    return heads;
  } finally {
    await model.dispose();
  }
}
