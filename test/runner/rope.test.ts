import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inverseFrequencies } from '../../native-runner/src/model/rope';

/** The frequencies written from the formulas in double precision, to compare against the float32 emulation. */
function exactDefault(theta: number, dim: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
}

function close(actual: ArrayLike<number>, expected: number[], relative = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= relative * Math.abs(expected[i]), `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('default RoPE: inv_freq[i] = theta^(-2i/d)', () => {
  close(inverseFrequencies({ type: 'default', theta: 10000 }, 16), exactDefault(10000, 16));
  assert.equal(inverseFrequencies({ type: 'default', theta: 10000 }, 16)[0], 1);
});

test('linear RoPE divides every frequency by the factor', () => {
  close(
    inverseFrequencies({ type: 'linear', theta: 10000, factor: 4 }, 8),
    exactDefault(10000, 8).map((f) => f / 4),
  );
});

test('llama3 RoPE keeps short wavelengths, divides long ones by the factor and blends between', () => {
  const rope = { type: 'llama3' as const, theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 };
  const base = exactDefault(500000, 64);
  const scaled = inverseFrequencies(rope, 64);
  base.forEach((f, i) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 32 / 4) close([scaled[i]], [f]);
    else if (wavelen > 32 / 1) close([scaled[i]], [f / 8]);
    else {
      const smooth = (32 / wavelen - 1) / (4 - 1);
      close([scaled[i]], [(1 - smooth) * (f / 8) + smooth * f], 1e-5);
    }
  });
  // the case must exercise all three regimes to mean anything
  const regimes = new Set(
    base.map((f) => {
      const w = (2 * Math.PI) / f;
      return w < 8 ? 'high' : w > 32 ? 'low' : 'mid';
    }),
  );
  assert.deepEqual([...regimes].sort(), ['high', 'low', 'mid']);
});
