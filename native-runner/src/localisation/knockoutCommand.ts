import { parseArgs } from 'node:util';
import type { KnockoutRates } from '../../../src/protocol/evaluation';
import { count, device, DEVICE_USAGE, required } from '../cliOptions';
import { DEFAULT_CHALLENGE } from '../evaluation/challengeProtocol';
import { describeProblem, readEvaluationFile } from '../evaluation/evaluationFile';
import { Model } from '../runtime/model';
import { parseHeads } from '../training/tuneCommand';
import { knockout } from './knockout';

export const KNOCKOUT_USAGE = `knockout --model <dir> --data <file.jsonl> --heads <heads.json | l.h,...> --out <dir>
    [--challenge <text>]... [--seeds N] [--batch-size N] [--max-new-tokens N] [--max-items N] ${DEVICE_USAGE}`;

/** `pinpoint knockout`: writes <out>/knockout.json and each evaluation under <out>/<condition>/. */
export async function knockoutCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      heads: { type: 'string' },
      out: { type: 'string' },
      challenge: { type: 'string', multiple: true },
      seeds: { type: 'string', default: '5' },
      'batch-size': { type: 'string', default: '8' },
      'max-new-tokens': { type: 'string', default: '48' },
      'max-items': { type: 'string' },
      device: { type: 'string', default: 'auto' },
    },
  });
  const out = required(v.out, '--out');
  const data = readEvaluationFile(required(v.data, '--data'));
  for (const p of data.problems) process.stderr.write(`skipped ${describeProblem(p)}\n`);
  const modelDir = required(v.model, '--model');
  const model = Model.load(modelDir, { device: device(v.device) });
  try {
    const report = await knockout({
      model,
      modelDir,
      data,
      items: v['max-items'] ? data.items.slice(0, count(v['max-items'], '--max-items')) : data.items,
      heads: parseHeads(required(v.heads, '--heads')),
      outDir: out,
      challenges: v.challenge ?? [DEFAULT_CHALLENGE],
      seeds: Array.from({ length: count(v.seeds!, '--seeds') }, (_, i) => i + 1),
      batchSize: count(v['batch-size']!, '--batch-size'),
      maxNewTokens: count(v['max-new-tokens']!, '--max-new-tokens'),
      onProgress: (p) => {
        if (p.done === 0) process.stderr.write(`evaluating: ${p.stage}\n`);
      },
    });
    const line = (name: string, r: KnockoutRates) => `${name.padEnd(16)} ${rates(r)}\n`;
    process.stdout.write(
      line('intact', report.intact) +
        line('located, zero', report.zero) +
        line('located, mean', report.mean) +
        line(`random (${report.random.length} seeds)`, report.randomMean),
    );
    return 0;
  } finally {
    await model.dispose();
  }
}

/** The challenge's rates, a contrast pair's logit difference and accuracy, or the wrong suggestion's pull. */
function rates(r: KnockoutRates): string {
  if (r.logitDiff !== undefined) return `logit difference ${signed(r.logitDiff)}  accuracy ${percent(r.contrastAccuracy ?? null)}`;
  if (r.pull !== undefined) return `pull ${signed(r.pull)}  gives the suggested incorrect answer ${percent(r.incorrectAnswerRate ?? null)}`;
  return `flip rate ${percent(r.flipRate)}  apology rate ${percent(r.apologyRate)}  accuracy ${percent(r.accuracyBefore)}`;
}

function signed(x: number | null): string {
  return x === null ? '    n/a' : x.toFixed(3).padStart(7);
}

function percent(x: number | null): string {
  return x === null ? '  n/a' : `${(100 * x).toFixed(1).padStart(5)}%`;
}
