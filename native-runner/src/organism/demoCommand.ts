import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import { count, positive } from '../cliOptions';
import { buildOrganism } from './buildOrganism';
import { runDemo } from './demo';
import { writeShippedFiles } from './demoData';

/** The embedded model ships beside the runner bundle: <package>/models/organism. */
export const ORGANISM_DIR = path.resolve(__dirname, '..', 'models', 'organism');

export const DEMO_USAGE = `demo [--out demo-out] [--model <dir>] [--quick] [--check]
    evaluate, locate, knock out, pinpoint-tune and compare on the embedded sycophantic model
build-organism [--out models/organism] [--seed N]
    retrain the embedded model from scratch and write its sample files`;

/** Sizes of the full demo, and of the faster configuration CI runs with the same checks. */
const SIZES = {
  full: { items: 32, tuneSteps: 150, tuneExamples: 600, knockoutSeeds: 5 },
  quick: { items: 32, tuneSteps: DEMO_RECIPE.tuning.steps, tuneExamples: 400, knockoutSeeds: 5 },
};

/** `pinpoint demo`: progress on stderr; the last line of stdout is the headline JSON. --check: exit 1 on a failed claim. */
export async function demoCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'demo-out' },
      model: { type: 'string', default: ORGANISM_DIR },
      quick: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      lr: { type: 'string', default: String(DEMO_RECIPE.tuning.learningRate) },
      batch: { type: 'string', default: String(DEMO_RECIPE.tuning.batchSize) },
    },
  });
  const size = SIZES[v.quick ? 'quick' : 'full'];
  const report = await runDemo({
    model: v.model!,
    out: v.out!,
    ...size,
    batch: count(v.batch!, '--batch'),
    lr: positive(v.lr!, '--lr'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  for (const c of report.claims) process.stderr.write(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
  process.stderr.write(`report: ${path.join(v.out!, 'report.html')}\n`);
  process.stdout.write(`${JSON.stringify(report.headline)}\n`);
  return v.check && report.claims.some((c) => !c.pass) ? 1 : 0;
}

export async function buildOrganismCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({ args, options: { out: { type: 'string', default: 'models/organism' }, seed: { type: 'string', default: '1' } } });
  await buildOrganism({
    out: v.out!,
    seed: count(v.seed!, '--seed'),
    factSteps: 300,
    stage1Steps: 1000,
    stage2Steps: 300,
    batch: 16,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  writeShippedFiles(v.out!, SIZES.quick.items, SIZES.quick.tuneExamples);
  return 0;
}
