import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { referenceCases, tempDir } from '../fixtures/paths';

/** `pinpoint conformance` as a user runs it: the built runner, every reference case, one JSON line each. */

const RUNNER = path.resolve(__dirname, '..', '..', 'dist', 'runner.js');
const CHECKS = [
  'tokenizer.encodings',
  'tokenizer.chats',
  'logits',
  'z',
  'patching.activation_all',
  'patching.activation_last',
  'patching.path_all',
  'patching.path_last',
  'patching.zero_ablation_all',
  'greedy_new_ids',
  'loss',
  'attn_grads',
  'adamw_qkvo',
  'adamw_qo',
];

function conformance(args: string[]) {
  const cache = tempDir('conformance');
  try {
    return spawnSync(process.execPath, [RUNNER, 'conformance', ...args], { encoding: 'utf8', env: { ...process.env, PINPOINT_CACHE: cache } });
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

test('the runner is built (npm test builds it first)', () => {
  assert.ok(fs.existsSync(RUNNER), `${RUNNER} is missing: run npm run build`);
});

test('every reference case passes every check on CPU in float32', () => {
  const cases = referenceCases();
  assert.ok(cases.length >= 4);
  const run = conformance([...cases, '--device', 'cpu']);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.case),
    cases.map((c) => path.basename(c)),
  );
  for (const line of lines) {
    assert.deepEqual(Object.keys(line.checks).sort(), [...CHECKS].sort());
    assert.equal(line.pass, true, JSON.stringify(line));
    assert.equal(line.provider, 'cpu');
  }
});

test('float16 graphs keep logits within 2e-2 of the float32 reference (run on CPU here, on CUDA where present)', () => {
  const run = conformance([...referenceCases(), '--dtype', 'float16']);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  for (const line of run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))) {
    assert.ok(line.checks.logits.max_abs_err < 2e-2 && line.checks.logits.max_abs_err > 0, JSON.stringify(line));
  }
});

test('a failing check makes the command exit non-zero', () => {
  const broken = tempDir('broken-case');
  const source = referenceCases()[0];
  for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(broken, file));
  const reference = JSON.parse(fs.readFileSync(path.join(broken, 'reference.json'), 'utf8'));
  reference.logits[0][0] += 0.01;
  fs.writeFileSync(path.join(broken, 'reference.json'), JSON.stringify(reference));
  const run = conformance([broken, '--device', 'cpu']);
  fs.rmSync(broken, { recursive: true, force: true });
  assert.equal(run.status, 1);
  const line = JSON.parse(run.stdout.trim());
  assert.equal(line.pass, false);
  assert.equal(line.checks.logits.pass, false);
  assert.ok(line.checks.logits.max_abs_err > 9e-3);
  assert.equal(line.checks.z.pass, true);
});
