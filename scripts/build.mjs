// Bundles the extension host code, the runner process and the webviews with esbuild.
import { chmodSync } from 'node:fs';
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
    // the runner's environment (RUNNER_ENV in src/protocol/protocol.ts), set before node starts: GNU env's -S splits it
    banner: { js: '#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node' },
  }),
  esbuild.build({
    ...common,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // jsonc-parser's "main" is a UMD build whose dynamic requires esbuild cannot follow; its ES module build it can
    mainFields: ['module', 'main'],
    external: ['vscode'],
  }),
  esbuild.build({
    ...common,
    // the panels' scripts run in the webview, a browser page with no Node and no vscode module
    entryPoints: ['src/webview/headMap.ts', 'src/webview/tuning.ts', 'src/webview/compare.ts'],
    outdir: 'dist/webview',
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
  }),
]);
// `pinpoint` runs the bundle itself, through its shebang
chmodSync('dist/runner.js', 0o755);
