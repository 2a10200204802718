import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusText } from '../../../src/extension/statusText';
import type { ModelInfo } from '../../../src/protocol/protocol';

/** The status bar's words for each state, CUDA included, which no machine of CI's can show for real. */

const MODEL: ModelInfo = {
  dir: '/models/Qwen2.5-0.5B-Instruct',
  modelType: 'qwen2',
  layers: 24,
  heads: 14,
  kvHeads: 2,
  headDim: 64,
  hiddenSize: 896,
  vocabSize: 151936,
  provider: 'cuda',
  nodesByProvider: { CUDAExecutionProvider: 1210, CPUExecutionProvider: 14 },
  dtype: 'float16',
};

test('a model on CUDA is named with the device measured, and the tooltip counts kernels per provider', () => {
  const { text, tooltip } = statusText(MODEL, '/models/Qwen2.5-0.5B-Instruct', undefined, false);
  assert.equal(text, '$(target) Pinpoint: Qwen2.5-0.5B-Instruct · CUDA');
  assert.match(tooltip, /^\/models\/Qwen2\.5-0\.5B-Instruct\nqwen2, 24 layers, 14 heads \(2 KV\) of 64, float16\nRuns on CUDA /);
  assert.ok(tooltip.includes('  CUDAExecutionProvider: 1210\n  CPUExecutionProvider: 14'), tooltip);
});

test('the same model measured on CPU says CPU', () => {
  assert.equal(
    statusText({ ...MODEL, provider: 'cpu', nodesByProvider: { CPUExecutionProvider: 1224 } }, '', undefined, false).text,
    '$(target) Pinpoint: Qwen2.5-0.5B-Instruct · CPU',
  );
});

test('before the first job the configured model shows as not loaded, with no device claimed', () => {
  const { text, tooltip } = statusText(undefined, '/models/organism', undefined, false);
  assert.equal(text, '$(target) Pinpoint: organism (not loaded)');
  assert.match(tooltip, /Loaded by the first job/);
  assert.equal(statusText(undefined, '', undefined, false).text, '$(target) Pinpoint: no model');
});

test('a running job spins and is named, and says how to stop it', () => {
  const { text, tooltip } = statusText(MODEL, '', 'evaluating sample-eval.jsonl 3/32', true);
  assert.equal(text, '$(sync~spin) Pinpoint: Qwen2.5-0.5B-Instruct · CUDA · evaluating sample-eval.jsonl 3/32');
  assert.match(tooltip, /^Running: evaluating sample-eval\.jsonl 3\/32 \(Pinpoint: Stop Job stops it\)\n/);
  assert.equal(statusText(MODEL, '', undefined, true).text, '$(sync~spin) Pinpoint: Qwen2.5-0.5B-Instruct · CUDA');
});
