import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** ONNX Runtime must never load in the extension host, nor any runner code: the evaluation-file parser is the protocol's. */
test('the extension bundle holds no onnxruntime-node and nothing of the runner', async () => {
  const result = await esbuild.build({
    entryPoints: [path.join(ROOT, 'src/extension/extension.ts')],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'cjs',
    mainFields: ['module', 'main'],
    external: ['vscode'],
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(
    inputs.filter((file) => /onnxruntime/.test(file)),
    [],
  );
  assert.deepEqual(
    inputs.filter((file) => file.startsWith('native-runner/')),
    [],
  );
  assert.ok(inputs.includes('src/protocol/evaluationFile.ts'), inputs.join(', '));
});
