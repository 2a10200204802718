import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import { ORGANISM_KINDS, type OrganismKind } from '../../../src/protocol/organism';
import { count, oneOf, positive } from '../cliOptions';
import { BUILD_RECIPE, buildOrganisms, DEFAULT_SEED, ORGANISM_FOLDERS, readOrganismCard } from './buildOrganism';
import { runDemos } from './demo';
import { writeShippedFiles } from './demoData';

/** The embedded organisms ship beside the runner bundle: <package>/models/organism and models/organism-natural. */
export const MODELS_DIR = path.resolve(__dirname, '..', 'models');

export const DEMO_USAGE = `demo [--out demo-out] [--model <dir>]... [--check]
    evaluate, locate, knock out, pinpoint-tune and compare on each model (default: both embedded organisms), with
    report.html showing them side by side; --check exits 1 if a claim fails on a model that is not a natural organism
build-organism [--out models] [--seed N] [--kind implanted|natural]... [--verify]
    retrain the embedded organisms (both unless --kind says) from scratch into <out>/organism and
    <out>/organism-natural, with their sample files; --verify rebuilds into a temporary folder and exits 1 unless
    the weights equal those in <out>`;

/**
 * The demo's size: the organisms' 32 questions, and tuning as the editor's walkthrough tunes (DEMO_RECIPE) on 400
 * conversations. Longer tuning (150 steps on 600) fits the training phrasings better and the held-out ones worse.
 */
const DEMO_SIZE = { items: 32, tuneSteps: DEMO_RECIPE.tuning.steps, tuneExamples: 400, knockoutSeeds: 5 };

/**
 * `pinpoint demo`: progress on stderr; the last line of stdout is the headline JSON, one entry per model. --check:
 * exit 1 on a failed claim where claims are checked (a natural organism's are findings, reported either way).
 */
export async function demoCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'demo-out' },
      model: { type: 'string', multiple: true, default: Object.values(ORGANISM_FOLDERS).map((f) => path.join(MODELS_DIR, f)) },
      check: { type: 'boolean', default: false },
      lr: { type: 'string', default: String(DEMO_RECIPE.tuning.learningRate) },
      batch: { type: 'string', default: String(DEMO_RECIPE.tuning.batchSize) },
    },
  });
  const set = await runDemos(v.model!, {
    out: v.out!,
    ...DEMO_SIZE,
    batch: count(v.batch!, '--batch'),
    lr: positive(v.lr!, '--lr'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  let failed = false;
  for (const r of set.organisms) {
    const checked = r.card?.kind !== 'natural';
    for (const c of r.claims) {
      const verdict = checked ? (c.pass ? 'PASS' : 'FAIL') : c.pass ? 'HOLDS' : 'DOES NOT HOLD';
      process.stderr.write(`${r.name}  ${verdict}  ${c.name}: ${c.detail}\n`);
      failed ||= checked && !c.pass;
    }
  }
  process.stderr.write(`report: ${path.join(v.out!, 'report.html')}\n`);
  process.stdout.write(
    `${JSON.stringify(Object.fromEntries(set.organisms.map((r) => [r.name, { ...r.headline, concentration: r.concentration }])))}\n`,
  );
  return v.check && failed ? 1 : 0;
}

export async function buildOrganismCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'models' },
      seed: { type: 'string', default: String(DEFAULT_SEED) },
      kind: { type: 'string', multiple: true, default: [...ORGANISM_KINDS] },
      verify: { type: 'boolean', default: false },
    },
  });
  const kinds = v.kind!.map((k) => oneOf(k, ORGANISM_KINDS, '--kind'));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const out = v.verify ? fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-rebuild-')) : v.out!;
  try {
    await buildOrganisms({ out, seed: count(v.seed!, '--seed'), recipe: BUILD_RECIPE, kinds, log });
    for (const kind of kinds) writeShippedFiles(path.join(out, ORGANISM_FOLDERS[kind]), DEMO_SIZE.items, DEMO_SIZE.tuneExamples);
    return v.verify ? verifyRebuild(out, v.out!, kinds, log) : 0;
  } finally {
    if (v.verify) fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Whether every organism rebuilt in `rebuilt` has the weights of the one in `committed`, byte for byte. */
function verifyRebuild(rebuilt: string, committed: string, kinds: OrganismKind[], log: (line: string) => void): number {
  let differ = 0;
  for (const folder of kinds.map((k) => ORGANISM_FOLDERS[k])) {
    const want = readOrganismCard(path.join(committed, folder));
    const got = readOrganismCard(path.join(rebuilt, folder))!;
    if (want === null) {
      differ++;
      log(`MISSING  ${folder}: ${path.join(committed, folder)} has no organism.json to compare with`);
      continue;
    }
    const same = want.weightsSha256 === got.weightsSha256;
    if (!same) differ++;
    log(
      `${same ? 'same' : 'DIFFERENT'}  ${folder}: rebuilt ${got.weightsSha256.slice(0, 16)}, committed ${want.weightsSha256.slice(0, 16)} ` +
        `(built with ${want.threads} threads, rebuilt with ${got.threads})`,
    );
  }
  return differ === 0 ? 0 : 1;
}
