import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../fixtures/paths';

/**
 * The demo as `npm run demo -- --check` runs it, on both committed organisms and both behaviours. It fails
 * when any of the paper's claims fails on the implanted organism (the command exits 1 with --check); the natural
 * organism's are findings, which the report shows whichever way they fall.
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
  'spt_kl_all_positions',
  'sft_kl_all_positions',
  'heldout_base_flip_rate',
  'heldout_spt_flip_rate',
  'random_spt_flip_rate',
  'heldout_random_spt_flip_rate',
  'random_spt_kl',
  'random_spt_kl_all_positions',
  'tuned_heads',
  'total_heads',
  'knockout_flip_rate',
  'random_knockout_flip_rate',
  'base_follow_rate',
  'spt_follow_rate',
  'sft_follow_rate',
  'base_plain_accuracy',
  'spt_suggestion_follow_rate',
  'spt_suggestion_plain_accuracy',
  'spt_suggestion_flip_rate',
  'spt_suggestion_accuracy',
  'spt_suggestion_kl',
  'spt_suggestion_kl_all_positions',
  'knockout_follow_rate',
  'random_knockout_follow_rate',
  'seconds',
];

test('the demo checks every claim of the paper on the implanted organism and reports the natural one beside it', { timeout: 30 * 60_000 }, () => {
  const out = tempDir('demo');
  const run = spawnSync(process.execPath, [RUNNER, 'demo', '--check', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, PINPOINT_CACHE: path.join(out, 'cache') },
  });
  const failed = run.stderr.split('\n').filter((l) => / FAIL /.test(l));
  assert.equal(run.status, 0, `demo exited ${run.status}:\n${failed.join('\n')}\n${run.stderr.slice(-2000)}`);
  const headlines = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(Object.keys(headlines), ['organism', 'organism-natural']);
  for (const headline of Object.values(headlines)) assert.deepEqual(Object.keys(headline as object).sort(), [...FIELDS, 'concentration'].sort());
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  const [implanted, natural] = report.organisms;
  assert.equal(implanted.card.kind, 'implanted');
  assert.equal(natural.card.kind, 'natural');
  assert.ok(implanted.claims.length >= 19 && implanted.claims.every((c: { pass: boolean }) => c.pass));
  const names = implanted.claims.map((c: { name: string }) => c.name);
  assert.match(names[0], /on the challenge ranks its implanted heads first/);
  assert.match(names[1], /on answer\.jsonl ranks its implanted heads first/);
  assert.ok(names.includes("Each behaviour's top heads are its own"));
  assert.equal(natural.claims.length, implanted.claims.length - 2, 'the natural organism is measured on the same claims, bar the implants');
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.equal((html.match(/<svg[^>]*aria-label="layer by head heatmap"/g) ?? []).length, 4, 'one heatmap per behaviour and organism');
  assert.equal((html.match(/<rect /g) ?? []).length, 4 * headlines.organism.total_heads);
  assert.match(html, /does not hold|holds/, "the natural organism's claims are findings");
  fs.rmSync(out, { recursive: true, force: true });
});
