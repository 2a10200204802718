import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../fixtures/paths';

/**
 * The demo as CI runs it: the faster configuration with the same checks, on the committed organism. It fails
 * when any of the paper's claims fails on the organism (the command exits 1 with --check).
 */

const RUNNER = path.resolve(__dirname, '..', '..', 'dist', 'runner.js');
const FIELDS = [
  'base_flip_rate',
  'spt_flip_rate',
  'sft_flip_rate',
  'base_accuracy',
  'spt_accuracy',
  'sft_accuracy',
  'spt_kl',
  'sft_kl',
  'heldout_base_flip_rate',
  'heldout_spt_flip_rate',
  'tuned_heads',
  'total_heads',
  'knockout_flip_rate',
  'random_knockout_flip_rate',
  'seconds',
];

test('the quick demo reproduces every claim of the paper on the organism', { timeout: 20 * 60_000 }, () => {
  const out = tempDir('demo');
  const run = spawnSync(process.execPath, [RUNNER, 'demo', '--quick', '--check', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, PINPOINT_CACHE: path.join(out, 'cache') },
  });
  const failed = run.stderr.split('\n').filter((l) => l.startsWith('FAIL'));
  assert.equal(run.status, 0, `demo exited ${run.status}:\n${failed.join('\n')}\n${run.stderr.slice(-2000)}`);
  const headline = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(Object.keys(headline).sort(), [...FIELDS].sort());
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.ok(report.claims.length >= 10 && report.claims.every((c: { pass: boolean }) => c.pass));
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg[^>]*aria-label="layer by head heatmap"/);
  assert.equal((html.match(/<rect /g) ?? []).length, headline.total_heads);
  fs.rmSync(out, { recursive: true, force: true });
});
