// Bundles the extension host code, the runner process and the webviews with esbuild.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning' };

await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: ['native-runner/src/cli.ts'],
    outfile: 'dist/runner.js',
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The native binding is loaded from node_modules at run time, never bundled, and only in the runner.
    external: ['onnxruntime-node'],
    banner: { js: '#!/usr/bin/env node' },
  }),
  esbuild.build({
    ...common,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode'],
  }),
]);
