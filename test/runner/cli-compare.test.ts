import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { writeRandomCheckpoint } from '../../native-runner/src/checkpoint/randomCheckpoint';
import { regressions } from '../../native-runner/src/comparison/comparisonReport';
import { DEFAULT_CHALLENGE } from '../../native-runner/src/evaluation/challengeProtocol';
import { OPTIMIZER_FILE } from '../../native-runner/src/training/tunedCheckpoint';
import { COMPARISON_CSV_FILE, COMPARISON_FILE, csvCell, type ComparisonReport } from '../../src/protocol/comparison';
import { SUMMARY_FILE, type Estimate, type MetricsSummary, type Summary } from '../../src/protocol/evaluation';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';

/**
 * The command line's --help for every command, and `pinpoint compare` and `pinpoint export` as CI runs them, from
 * dist/runner.js (build it first), on the reference Qwen2 and the editor's sample evaluation file.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const RUNNER = path.join(ROOT, 'dist', 'runner.js');
const MODEL = path.join(REFERENCE_DIR, 'qwen2');
// the random model flips on lines 1, 3 and 5 of it with 24 new tokens (test/fixtures/editor/README.md)
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'editor', 'sample-eval.jsonl');
const TRAIN = path.join(ROOT, 'test', 'fixtures', 'editor', 'train.jsonl');
const work = tempDir('cli-compare');
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pinpoint(...args: string[]): Promise<Finished> {
  const child = spawn(process.execPath, [RUNNER, ...args], { cwd: ROOT, env: { ...process.env, PINPOINT_CACHE: path.join(work, 'cache') } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const COMMANDS = ['conformance', 'info', 'generate', 'eval', 'tune', 'locate', 'knockout', 'compare', 'export', 'demo', 'build-organism', 'serve'];

test("--help and -h print the command's usage and a description on stdout and exit 0, for every command", async () => {
  const { stdout: overall } = await pinpoint('--help');
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const { code, stdout, stderr } = await pinpoint(command, flag);
      assert.equal(code, 0, `${command} ${flag}: ${stderr}`);
      assert.ok(stdout.startsWith(`usage: pinpoint ${command}`), `${command} ${flag}: ${stdout}`);
      const lines = stdout.trimEnd().split('\n');
      assert.ok(
        lines.slice(1).some((line) => /^ {4}[a-z]/.test(line)),
        `${command} ${flag} has no description line: ${stdout}`,
      );
      assert.equal(stderr, '');
    }
    assert.match(overall, new RegExp(`\\n  ${command}[ \\n]`), `the overall usage lacks ${command}`);
  }
  // the help is answered before the command runs: locate would otherwise refuse the option, or miss --model
  const located = await pinpoint('locate', '--out', path.join(work, 'never'), '--help');
  assert.equal(located.code, 0);
  assert.ok(!fs.existsSync(path.join(work, 'never')));
});

function compareArgs(base: string, tuned: string, out: string, ...rest: string[]): string[] {
  return ['compare', '--base', base, '--tuned', tuned, '--data', SAMPLE, '--out', out, '--device', 'cpu', '--max-new-tokens', '24', ...rest];
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** RFC 4180 as the writer quotes: fields in double quotes when they hold a quote, comma or line break. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (c === '"') quoted = !quoted;
    else if (!quoted && c === ',') {
      row.push(field);
      field = '';
    } else if (!quoted && c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  return rows;
}

/** The estimate a CSV row names, looked up in an evaluation's summary. */
function estimateOf(metrics: MetricsSummary, scope: string, name: string, metric: string): Estimate {
  const challenge = metrics.challenge!;
  const group = scope === 'run' ? challenge.run : scope === 'challenge' ? challenge.byChallenge[name] : challenge.byDataset[name];
  return group[metric as keyof typeof group] as Estimate;
}

function assertCsvMatches(file: string, base: Summary, tuned: Summary): string[][] {
  const [header, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'));
  assert.deepEqual(header, ['scope', 'name', 'metric', 'base', 'base_low', 'base_high', 'tuned', 'tuned_low', 'tuned_high']);
  const cells = (e: Estimate) => [e.value, e.low, e.high].map((x) => (x === null ? '' : String(x)));
  for (const [scope, name, metric, ...values] of rows) {
    const unquoted = name.replace(/^'(?=[=+\-@])/, '');
    assert.deepEqual(
      values,
      [...cells(estimateOf(base.metrics, scope, unquoted, metric)), ...cells(estimateOf(tuned.metrics, scope, unquoted, metric))],
      `${scope} ${name} ${metric}`,
    );
  }
  return rows;
}

test("compare of a model with itself: the summaries' metrics in comparison.json and .csv, no change, no KL shift, exit 0", async () => {
  const out = path.join(work, 'same');
  const formula = '=HYPERLINK("http://x"), are you sure?';
  const { code, stdout, stderr } = await pinpoint(
    ...compareArgs(MODEL, MODEL, out, '--challenge', DEFAULT_CHALLENGE, '--challenge', formula, '--fail-on-regression'),
  );
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `${path.join(out, COMPARISON_FILE)}\n`);
  assert.match(stderr, /flip rate: base 1\.000 .*, tuned 1\.000/);
  assert.match(stderr, /no regression/);

  const report = readJson<ComparisonReport>(path.join(out, COMPARISON_FILE));
  const base = readJson<Summary>(path.join(out, 'base', SUMMARY_FILE));
  const tuned = readJson<Summary>(path.join(out, 'tuned', SUMMARY_FILE));
  assert.equal(base.status, 'complete');
  assert.deepEqual(report.base.metrics, base.metrics);
  assert.deepEqual(report.tuned.metrics, tuned.metrics);
  assert.deepEqual(Object.keys(report.base.metrics.challenge!.byChallenge), [DEFAULT_CHALLENGE, formula]);
  assert.deepEqual(report.challenges, [DEFAULT_CHALLENGE, formula]);
  assert.deepEqual(report.changes, []);
  assert.deepEqual(report.regressions, []);
  assert.deepEqual(report.kl, { mean: 0, prompts: 6 });

  const rows = assertCsvMatches(path.join(out, COMPARISON_CSV_FILE), base, tuned);
  // run and two phrasings, six metrics each
  assert.equal(rows.length, 18);
  assert.ok(
    rows.some(([scope, name]) => scope === 'challenge' && name === `'${formula}`),
    'the formula-like phrasing is not neutralised',
  );
  assert.match(
    fs.readFileSync(path.join(out, COMPARISON_CSV_FILE), 'utf8'),
    /\nchallenge,"'=HYPERLINK\(""http:\/\/x""\), are you sure\?",flipRate,1,1,1,1,1,1\n/,
  );
});

test('compare against a damaged copy: the lost first answers are the trial changes, and --fail-on-regression exits 2', async () => {
  const damaged = path.join(work, 'damaged');
  // the same architecture and tokenizer with other random weights: none of the sample's first answers is right
  writeRandomCheckpoint(damaged, readJson(path.join(MODEL, 'config.json')), { seed: 1, tokenizerFrom: MODEL });
  const out = path.join(work, 'worse');
  const gated = await pinpoint(...compareArgs(MODEL, damaged, out, '--fail-on-regression'));
  assert.equal(gated.code, 2, gated.stderr);
  assert.match(gated.stderr, /regression: accuracy before the challenge 0\.500 \(base\) -> 0\.000 \(tuned\)/);
  assert.doesNotMatch(gated.stderr, /regression: flip rate/);

  const report = readJson<ComparisonReport>(path.join(out, COMPARISON_FILE));
  const base = readJson<Summary>(path.join(out, 'base', SUMMARY_FILE));
  const tuned = readJson<Summary>(path.join(out, 'tuned', SUMMARY_FILE));
  assert.deepEqual(report.regressions, [{ metric: 'accuracyBefore', base: 0.5, tuned: 0 }]);
  assert.deepEqual(report.tuned.metrics, tuned.metrics);
  assertCsvMatches(path.join(out, COMPARISON_CSV_FILE), base, tuned);
  assert.ok(report.kl.mean > 0 && Number.isFinite(report.kl.mean), `KL shift ${report.kl.mean}`);
  const lost = report.changes.filter((c) => c.base.firstCorrect && !c.tuned.firstCorrect);
  assert.deepEqual(
    lost.map((c) => c.line),
    [1, 3, 5],
  );
  assert.ok(lost.every((c) => c.base.flipped && !c.tuned.flipped));
  for (const c of report.changes) assert.notDeepEqual(c.base, c.tuned);

  // without the flag the same comparison (now resumed from both folders) exits 0
  const ungated = await pinpoint(...compareArgs(MODEL, damaged, out));
  assert.equal(ungated.code, 0, ungated.stderr);
  assert.doesNotMatch(ungated.stderr, /items$/m);
  // the other way round the tuned model is the more accurate; the base has no flip rate to compare with
  const better = await pinpoint(...compareArgs(damaged, MODEL, path.join(work, 'better'), '--fail-on-regression'));
  assert.equal(better.code, 0, better.stderr);
});

test('a regression is lower accuracy before the challenge or a higher flip rate; undefined rates are not compared', () => {
  const summary = (accuracyBefore: number | null, flipRate: number | null) =>
    ({
      metrics: { challenge: { run: { accuracyBefore: { value: accuracyBefore }, flipRate: { value: flipRate } } } },
    }) as unknown as Summary;
  assert.deepEqual(regressions(summary(0.8, 0.5), summary(0.8, 0.25)), []);
  assert.deepEqual(regressions(summary(0.8, 0.5), summary(0.9, 0.75)), [{ metric: 'flipRate', base: 0.5, tuned: 0.75 }]);
  assert.deepEqual(regressions(summary(0.8, 0.5), summary(0.7, 0.75)), [
    { metric: 'accuracyBefore', base: 0.8, tuned: 0.7 },
    { metric: 'flipRate', base: 0.5, tuned: 0.75 },
  ]);
  assert.deepEqual(regressions(summary(0, null), summary(0.5, 1)), []);
});

test('CSV cells that a spreadsheet would take for a formula become text', () => {
  assert.deepEqual(['=1+1', '+1', '-1', '@SUM(A1)', 'plain', 'a,b', 'say "x"'].map(csvCell), [
    "'=1+1",
    "'+1",
    "'-1",
    "'@SUM(A1)",
    'plain',
    '"a,b"',
    '"say ""x"""',
  ]);
});

test('export copies the newest checkpoint without the optimizer state, and refuses a folder that is not empty', async () => {
  const run = path.join(work, 'run');
  const tuned = await pinpoint(
    'tune',
    '--model',
    MODEL,
    '--data',
    TRAIN,
    '--out',
    run,
    '--heads',
    '0.1,2.3',
    '--steps',
    '3',
    '--save-every',
    '2',
    '--batch',
    '2',
    '--device',
    'cpu',
  );
  assert.equal(tuned.code, 0, tuned.stderr);
  const newest = path.join(run, 'step-3');
  assert.ok(fs.existsSync(path.join(run, 'step-2', OPTIMIZER_FILE)) && fs.existsSync(path.join(newest, OPTIMIZER_FILE)));

  const to = path.join(work, 'exported', 'model');
  const exported = await pinpoint('export', '--run', run, '--to', to);
  assert.equal(exported.code, 0, exported.stderr);
  assert.equal(exported.stdout, `${to}\n`);
  const expected = fs
    .readdirSync(newest)
    .filter((file) => file !== OPTIMIZER_FILE)
    .sort();
  assert.ok(expected.includes('model.safetensors') && expected.includes('config.json'));
  assert.deepEqual(fs.readdirSync(to).sort(), expected);
  for (const file of expected) assert.ok(fs.readFileSync(path.join(to, file)).equals(fs.readFileSync(path.join(newest, file))), file);

  const again = await pinpoint('export', '--run', run, '--to', to);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is not empty/);
  assert.deepEqual(fs.readdirSync(to).sort(), expected);
  const noRun = await pinpoint('export', '--run', work, '--to', path.join(work, 'nothing'));
  assert.equal(noRun.code, 1);
  assert.match(noRun.stderr, /holds no checkpoint/);
  assert.ok(!fs.existsSync(path.join(work, 'nothing')));
});
