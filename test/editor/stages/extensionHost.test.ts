import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import * as esbuild from 'esbuild';
import type { BrowserContext } from 'playwright-core';
import { tempDir } from '../../fixtures/paths';
import { launchChromium, screenshot } from '../harness/chromium';
import { codeServerHome, requireInstalled, ROOT, startCodeServer, type CodeServer } from '../harness/codeServer';
import { makeWorkspace, QWEN2 } from '../harness/workspace';

/**
 * Stage 2: the mocha tests of test/editor/host inside code-server's extension host, with the real vscode API and the
 * extension loaded from this checkout (dist/ built). code-server has no --extensionTestsPath; the web workbench
 * takes it, as @vscode/test-web passes it, in the `payload` URL parameter, and reports the exit code through
 * window.codeAutomationExit.
 */

const OUT = path.join(ROOT, 'dist', 'test', 'host');
const TIMEOUT_MS = 300_000;

/** everything the stage writes, removed after it */
const scratch = tempDir('editor-host');
let server: CodeServer;
let browser: BrowserContext;

before(async () => {
  requireInstalled();
  fs.rmSync(OUT, { recursive: true, force: true });
  const host = path.join(ROOT, 'test', 'editor', 'host');
  await esbuild.build({
    entryPoints: fs
      .readdirSync(host)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(host, f)),
    outdir: OUT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  server = await startCodeServer(codeServerHome(path.join(scratch, 'code-server')), { PINPOINT_CACHE: path.join(scratch, 'cache') });
  browser = await launchChromium(path.join(scratch, 'chromium'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('the extension-host tests pass in code-server', { timeout: TIMEOUT_MS }, async () => {
  const workspace = makeWorkspace(path.join(scratch, 'workspace'), {
    'pinpoint.model': QWEN2,
    'pinpoint.tuning.data': path.join(ROOT, 'test', 'fixtures', 'editor', 'train.jsonl'),
  });
  const authority = await remoteAuthority(server.url, workspace);
  const remote = (file: string) => `vscode-remote://${authority}${file}`;
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', remote(ROOT)],
    ['extensionTestsPath', remote(path.join(OUT, 'index.js'))],
  ]);
  const page = browser.pages()[0] ?? (await browser.newPage());
  const output: string[] = [];
  const exit = new Promise<number>((resolve) => {
    void page.exposeFunction('codeAutomationExit', (code: number) => resolve(code));
  });
  await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
    // console calls arrive as their arguments, format string first
    const line = util.format(...args);
    output.push(line);
    process.stdout.write(`[extension host ${type}] ${line}\n`);
  });
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no exit code from the extension host')), TIMEOUT_MS - 10_000);
  });
  const code = await Promise.race([exit, timeout])
    .catch(async (err) => {
      await screenshot(page, 'extension-host-timeout');
      throw err;
    })
    .finally(() => clearTimeout(timer));
  assert.equal(code, 0, `the extension-host tests failed:\n${output.join('\n')}\n\ncode-server:\n${server.log().slice(-4000)}`);
  assert.ok(
    output.some((line) => /passing/.test(line)),
    'mocha reported its results',
  );
});

/** The authority the workbench addresses its server by, as code-server writes it into the page. */
async function remoteAuthority(url: string, folder: string): Promise<string> {
  const html = await (await fetch(`${url}/?folder=${encodeURIComponent(folder)}`)).text();
  const settings = /id="vscode-workbench-web-configuration" data-settings="([^"]*)"/.exec(html);
  assert.ok(settings, 'the workbench page carries its configuration');
  return (JSON.parse(settings[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as { remoteAuthority: string }).remoteAuthority;
}
