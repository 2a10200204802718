import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CHALLENGE } from '../native-runner/src/evaluation/challengeProtocol';
import { readEvaluationFile, type EvaluationFile } from '../native-runner/src/evaluation/evaluationFile';
import { resultDifferences } from '../native-runner/src/evaluation/resultComparison';
import { RESULTS_FILE } from '../src/protocol/evaluation';
import { runEvaluation } from '../native-runner/src/evaluation/runEvaluation';
import { Model } from '../native-runner/src/runtime/model';
import { REFERENCE_DIR } from '../test/fixtures/paths';
import type { Device } from '../src/protocol/protocol';

/**
 * Evaluation throughput: items/s of the evaluation protocols with generation batched across items and one item at
 * a time, on a reference checkpoint (or --model), and whether both give the same results.
 * Usage: npm run bench:eval [-- --model <dir>] [--device auto|cpu|cuda] [--items N] [--batch-size N] [--max-new-tokens N]
 */

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(REFERENCE_DIR, 'qwen2') },
    device: { type: 'string', default: 'auto' },
    items: { type: 'string', default: '24' },
    'batch-size': { type: 'string', default: '8' },
    'max-new-tokens': { type: 'string', default: '32' },
  },
});
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-bench-eval-'));
process.env.PINPOINT_CACHE ??= path.join(work, 'cache');

const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures', 'eval');
const SOURCES = [
  'are_you_sure.jsonl',
  'sycophancy_on_nlp_survey.jsonl',
  'sycophancy_on_philpapers2020.jsonl',
  'sycophancy_on_political_typology_quiz.jsonl',
];

/** The published-format fixtures repeated up to `count` lines; their ids are file:line, so every line is an item. */
function benchData(count: number): EvaluationFile {
  const lines = SOURCES.flatMap((name) => fs.readFileSync(path.join(FIXTURES, name), 'utf8').split('\n').filter(Boolean));
  const file = path.join(work, 'items.jsonl');
  fs.writeFileSync(file, Array.from({ length: count }, (_, i) => lines[i % lines.length]).join('\n'));
  return readEvaluationFile(file);
}

async function timedRun(model: Model, data: EvaluationFile, batchSize: number, name: string): Promise<{ seconds: number; results: unknown[] }> {
  const outDir = path.join(work, name);
  const start = process.hrtime.bigint();
  await runEvaluation({
    model,
    modelDir: values.model!,
    judge: null,
    data,
    items: data.items,
    outDir,
    challenges: [DEFAULT_CHALLENGE],
    maxNewTokens: Number(values['max-new-tokens']),
    batchSize,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const results = fs
    .readFileSync(path.join(outDir, RESULTS_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  return { seconds, results };
}

async function main(): Promise<number> {
  const data = benchData(Number(values.items));
  const batchSize = Number(values['batch-size']);
  const model = Model.load(values.model!, { device: values.device as Device });
  try {
    // compiles the graphs, so that neither timed run pays for it
    await timedRun(model, { ...data, items: data.items.slice(0, 2) }, 2, 'warm-up');
    const batched = await timedRun(model, data, batchSize, 'batched');
    const single = await timedRun(model, data, 1, 'single');
    const { provider } = await model.placement();
    const rate = (r: { seconds: number }) => `${(data.items.length / r.seconds).toFixed(2).padStart(8)} items/s (${r.seconds.toFixed(2)} s)`;
    console.log(
      `pinpoint eval throughput: ${path.basename(values.model!)} on ${provider}, ${os.cpus().length} cores, ${data.items.length} items, max ${values['max-new-tokens']} new tokens per turn`,
    );
    console.log(`batched, ${String(batchSize).padEnd(3)} per batch ${rate(batched)}`);
    console.log(`one item at a time    ${rate(single)}`);
    console.log(`speed-up ${(single.seconds / batched.seconds).toFixed(2)}x`);
    const differences = resultDifferences(batched.results, single.results, 1e-4);
    console.log(`results equal: ${differences.length === 0 ? 'yes' : `no\n${differences.slice(0, 20).join('\n')}`}`);
    return differences.length === 0 ? 0 : 1;
  } finally {
    await model.dispose();
  }
}

main()
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      console.error(error);
      process.exitCode = 1;
    },
  )
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));
