import { test } from 'node:test';
import assert from 'node:assert/strict';
import { smoothed } from '../../../src/webview/smoothing';

test('the debiased moving average starts at the first value and follows a constant exactly', () => {
  assert.deepEqual(
    smoothed([4, 4, 4], 0.9).map((v) => Number(v.toFixed(12))),
    [4, 4, 4],
  );
  const [first, second] = smoothed([2, 6], 0.5);
  assert.equal(first, 2);
  // (0.5 * (0.5 * 2) + 0.5 * 6) / (1 - 0.25) = (0.5 + 3) / 0.75
  assert.ok(Math.abs(second - 3.5 / 0.75) < 1e-12, String(second));
});

test('with no weight on the past the values are unchanged', () => {
  assert.deepEqual(smoothed([3, 1, 2], 0), [3, 1, 2]);
});
