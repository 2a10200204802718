import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** ONNX Runtime must never load in the extension host; the extension bundles the runner's evaluation-file parser. */
test('the extension bundle holds no onnxruntime-node and nothing of the runner beyond the evaluation file format', async () => {
  const result = await esbuild.build({
    entryPoints: [path.join(ROOT, 'src/extension/extension.ts')], bundle: true, write: false, metafile: true,
    platform: 'node', format: 'cjs', mainFields: ['module', 'main'], external: ['vscode'], logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(inputs.filter((file) => /onnxruntime/.test(file)), []);
  const runner = inputs.filter((file) => file.startsWith('native-runner/'));
  assert.ok(runner.includes('native-runner/src/evaluation/evaluationFile.ts'), runner.join(', '));
  assert.deepEqual(runner.filter((file) => !file.startsWith('native-runner/src/evaluation/')), []);
});
