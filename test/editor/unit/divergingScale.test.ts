import { test } from 'node:test';
import assert from 'node:assert/strict';
import { divergingColour, maxAbs } from '../../../src/webview/divergingScale';

const colours = {
  negative: [0, 0, 255] as [number, number, number],
  zero: [255, 255, 255] as [number, number, number],
  positive: [255, 0, 0] as [number, number, number],
};

test('zero is the background, the largest magnitude either end, and the sign picks the side', () => {
  assert.deepEqual(divergingColour(0, 2, colours), [255, 255, 255]);
  assert.deepEqual(divergingColour(2, 2, colours), [255, 0, 0]);
  assert.deepEqual(divergingColour(-2, 2, colours), [0, 0, 255]);
  assert.deepEqual(divergingColour(-1, 2, colours), [127.5, 127.5, 255]);
  assert.deepEqual(divergingColour(1, 2, colours), [255, 127.5, 127.5]);
});

test('the scale is symmetric: the extent is the largest magnitude of either sign', () => {
  assert.equal(
    maxAbs([
      [0.1, -0.7],
      [0.3, Number.NaN],
    ]),
    0.7,
  );
  assert.deepEqual(divergingColour(0.5, maxAbs([[0]]), colours), [255, 255, 255]);
});
