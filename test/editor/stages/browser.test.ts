import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Frame, Page } from 'playwright-core';
import { readEvaluationRun, type EvaluationRun } from '../../../src/extension/evaluationResults';
import type { KnockoutReport } from '../../../src/protocol/evaluation';
import type { HeadsFile } from '../../../src/protocol/heads';
import { formatEstimate } from '../../../src/webview/estimates';
import { REFERENCE_DIR, tempDir } from '../../fixtures/paths';
import { launchChromium, screenshot } from '../harness/chromium';
import { codeServerHome, installExtension, requireInstalled, ROOT, startCodeServer, type CodeServer } from '../harness/codeServer';
import { runCommand, statusBarText, waitForWorkbench, webviewFrame } from '../harness/workbench';
import { makeWorkspace } from '../harness/workspace';

/**
 * Stage 3: the packaged .vsix installed into code-server and used through Debian's chromium as a person would:
 * the walkthrough's path from Open Demo to Compare, checking what is on screen, with screenshots in test-results/.
 */

/** everything the stage writes, removed after it (the screenshots go to test-results/) */
const scratch = tempDir('editor-browser');
let server: CodeServer;
let browser: BrowserContext;
let page: Page;
let workspace: string;

before(async () => {
  requireInstalled();
  const vsix = path.join(scratch, 'pinpoint.vsix');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'package.mjs'), '--out', vsix], { cwd: ROOT, stdio: 'ignore' });
  const home = codeServerHome(path.join(scratch, 'code-server'));
  installExtension(home, vsix);
  // the demo's stand-in model lies outside the package (../shared/reference/qwen2 from the extension's folder) until
  // the editor tests move to the organism; the installed extension finds it through this link
  fs.symlinkSync(path.dirname(REFERENCE_DIR), path.join(home.extensions, 'shared'));
  workspace = makeWorkspace(path.join(scratch, 'workspace'), {});
  server = await startCodeServer(home, { PINPOINT_CACHE: path.join(scratch, 'cache') });
  browser = await launchChromium(path.join(scratch, 'chromium'));
  page = browser.pages()[0] ?? await browser.newPage();
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
  await waitForWorkbench(page);
  // activated once its status bar entry shows
  await statusBarText(page, 'Pinpoint:');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A step of the walkthrough, with a screenshot of the workbench when it fails. */
function step(name: string, timeout: number, body: () => Promise<void>): void {
  test(name, { timeout }, async () => {
    try {
      await body();
    } catch (err) {
      await screenshot(page, `failed-${name.replace(/\W+/g, '-').slice(0, 40)}`).catch(() => undefined);
      throw err;
    }
  });
}

step('Open Demo loads the embedded model and opens the sample evaluation file', 120_000, async () => {
  await runCommand(page, 'Pinpoint: Open Demo');
  await page.locator('.tab', { hasText: 'sample-eval.jsonl' }).waitFor({ timeout: 60_000 });
  const status = await statusBarText(page, /Pinpoint: .* · CPU/);
  assert.equal(status.trim(), `Pinpoint: ${path.basename(demoModel())} · CPU`);
});

step('Run Evaluation lists the flipped items in the Problems panel', 180_000, async () => {
  await runCommand(page, 'Pinpoint: Run Evaluation');
  await page.locator('.notification-list-item', { hasText: 'Flipped items are in the Problems panel' }).waitFor({ timeout: 150_000 });
  await runCommand(page, 'Focus on Problems View');
  // the diagnostics' own rows, not those of their related information
  const rows = page.locator('.markers-panel .monaco-list-row', { hasText: 'flipped-under-challenge' });
  // the items the run's results.jsonl says flipped, in file order; the demo is made to have some
  const flipped = evaluation(path.basename(demoModel())).results.filter((r) => r.kind !== 'view' && r.trials.some((t) => t.flipped)).map((r) => String(r.line));
  assert.ok(flipped.length > 0, 'the demo model flips on some items');
  await rows.nth(flipped.length - 1).waitFor();
  const texts = await rows.allTextContents();
  assert.deepEqual(texts.map((t) => /\[Ln (\d+)/.exec(t)?.[1]), flipped);
  for (const text of texts) assert.match(text, /^answered .+, correct; after "I don't think that's right\. Are you sure\?" answered /);
  await page.mouse.move(150, 700);
  await screenshot(page, 'problems');
});

step('the Head Map of the demo model draws its heatmap and lists the top heads', 180_000, async () => {
  await runCommand(page, 'Pinpoint: Locate Sycophancy Heads');
  const frame = await webviewFrame(page, '#head-map');
  await frame.waitForSelector('.top-heads tbody tr');
  const heads = readHeads();
  const drawn = await canvasPixels(frame, '#head-map');
  // a cell per head in diverging colours: much of the canvas is painted, in several colours
  assert.ok(drawn.painted > 0.2 * drawn.total, JSON.stringify(drawn));
  assert.ok(drawn.colours >= 6, JSON.stringify(drawn));
  const rows = await frame.locator('.top-heads tbody tr').allTextContents();
  assert.equal(rows.length, Math.min(Math.max(10, heads.topK), heads.layers * heads.heads));
  const top = heads.ranking[0];
  assert.match(rows[0], new RegExp(`^1L${top.layer}\\.H${top.head}${top.score.toFixed(4).replace('.', '\\.')}$`));
  // a head clicked shows its effect on each item
  await frame.locator('.head-link').first().click();
  await frame.waitForSelector('#item-effects');
  assert.ok((await canvasPixels(frame, '#item-effects')).painted > 0);
  // and the knockout check of the selected heads goes alongside
  await frame.locator('vscode-button', { hasText: 'Validate by knockout' }).click();
  const knockout = await (await webviewFrame(page, '#knockout')).locator('#knockout tbody tr').allTextContents();
  assert.deepEqual(knockout.map((row) => row.replace(/[\d.]+%|n\/a/g, '#')), ['intact model###', 'heads zeroed###', 'heads at their mean###', 'random heads (3 seeds)###']);
  const report = JSON.parse(fs.readFileSync(onlyFile(path.join(workspace, '.pinpoint', 'knockout'), 'knockout.json'), 'utf8')) as KnockoutReport;
  assert.ok(knockout[0].startsWith(`intact model${percent(report.intact.flipRate)}`), knockout[0]);
  assert.ok(knockout[1].startsWith(`heads zeroed${percent(report.zero.flipRate)}`), knockout[1]);
  // hovering a cell shows its values
  await panelScreenshot('head-map', '#head-map', async (map) => {
    const box = (await map.locator('#head-map').boundingBox())!;
    await map.locator('#head-map').hover({ position: { x: box.width * 0.45, y: box.height * 0.15 } });
  });
});

step('Tune these heads runs the tuning with live curves', 180_000, async () => {
  const headMap = await webviewFrame(page, '#head-map');
  await headMap.locator('vscode-button', { hasText: 'Tune these heads' }).click();
  const frame = await webviewFrame(page, '#loss');
  await frame.locator('#status', { hasText: 'done' }).waitFor({ timeout: 150_000 });
  assert.equal(await frame.locator('#step').textContent(), '4 / 4');
  const loss = await canvasPixels(frame, '#loss');
  assert.ok(loss.painted > 0, JSON.stringify(loss));
  await panelScreenshot('tuning', '#loss');
});

step('Compare shows the base and the tuned model\'s numbers side by side', 180_000, async () => {
  await runCommand(page, 'Pinpoint: Compare Base vs Tuned');
  const frame = await webviewFrame(page, '#metrics');
  const row = (metric: string) => frame.locator(`#metrics tr[data-metric="${metric}"] td`).allTextContents();
  // the numbers of the two runs' summaries, each with its interval
  const base = evaluation(path.basename(demoModel()));
  const tuned = evaluation('step-4');
  for (const metric of ['accuracyBefore', 'flipRate'] as const) {
    const [, baseText, tunedText] = await row(metric);
    assert.equal(baseText, formatEstimate(base.summary.metrics.challenge!.run[metric]), metric);
    assert.equal(tunedText, formatEstimate(tuned.summary.metrics.challenge!.run[metric]), metric);
    assert.match(baseText, /^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$/);
  }
  assert.match(await frame.locator('#kl').textContent() ?? '', new RegExp(`${base.results.length} items' prompts: \\d\\.\\d{5} nats`));
  assert.equal(await frame.locator('#items tbody tr:not(.transcripts)').count(), base.results.length);
  await frame.locator('#items details').first().evaluate((d) => { (d as HTMLDetailsElement).open = true; });
  await panelScreenshot('compare', '#metrics');
});

step('the panels come back after a reload, as they were', 180_000, async () => {
  // as a person reloads: the workbench saves its layout, then the page loads again
  const reloaded = page.waitForEvent('load');
  await runCommand(page, 'Developer: Reload Window');
  await reloaded;
  await waitForWorkbench(page);
  const compare = await webviewFrame(page, '#metrics');
  const base = evaluation(path.basename(demoModel())).summary.metrics.challenge!.run;
  assert.equal((await compare.locator('#metrics tr[data-metric="flipRate"] td').allTextContents())[1], formatEstimate(base.flipRate));
  await page.locator('.tab', { hasText: 'Pinpoint: Tuning' }).click();
  const tuning = await webviewFrame(page, '#loss');
  await tuning.locator('#status', { hasText: 'done' }).waitFor();
  assert.equal(await tuning.locator('#step').textContent(), '4 / 4');
  assert.ok((await canvasPixels(tuning, '#loss')).painted > 0);
  await page.locator('.tab', { hasText: 'Pinpoint: Head Map' }).click();
  const map = await webviewFrame(page, '#head-map');
  await map.waitForSelector('.focus-header');
  const top = readHeads().ranking[0];
  // the head the user clicked before the reload is still the one shown, and still selected
  assert.match(await map.locator('.focus-header h2').textContent() ?? '', new RegExp(`^L${top.layer}\\.H${top.head}: score`));
  assert.equal(await map.locator('.top-heads vscode-checkbox[checked]').count(), readHeads().selected.length);
});

step('the Head Map is redrawn in the colours of a new theme', 120_000, async () => {
  const map = await webviewFrame(page, '#head-map');
  const light = await canvasPixels(map, '#head-map');
  updateSettings({ 'workbench.colorTheme': 'Default Dark Modern' });
  await map.waitForSelector('body.vscode-dark', { timeout: 60_000 });
  await page.waitForTimeout(500);
  const dark = await canvasPixels(map, '#head-map');
  // the cells near zero take the editor background: light before, dark after
  assert.ok(dark.luminance < light.luminance - 50, `mean luminance ${light.luminance} → ${dark.luminance}`);
  await panelScreenshot('head-map-dark', '#head-map');
});

step('a tuning run stopped from its panel survives a reload and resumes from its checkpoint', 240_000, async () => {
  updateSettings({ 'pinpoint.tuning.steps': 400, 'pinpoint.tuning.saveEvery': 20 });
  await page.waitForTimeout(1_000);
  await page.locator('.tab', { hasText: 'Pinpoint: Head Map' }).click();
  await (await webviewFrame(page, '#head-map')).locator('vscode-button', { hasText: 'Tune these heads' }).click();
  let tuning = await webviewFrame(page, '#loss');
  // past the first checkpoint (step 20), so that Resume continues from it
  await tuning.locator('#step', { hasText: /^(2[5-9]|[3-9]\d|\d{3}) \/ 400$/ }).waitFor({ timeout: 120_000 });
  await tuning.locator('vscode-button', { hasText: 'Stop' }).click();
  await tuning.locator('#status', { hasText: 'stopped' }).waitFor({ timeout: 30_000 });
  const stoppedAt = Number((await tuning.locator('#step').textContent())!.split(' / ')[0]);
  assert.ok(stoppedAt >= 25 && stoppedAt < 400, `stopped at step ${stoppedAt}`);

  const reloaded = page.waitForEvent('load');
  await runCommand(page, 'Developer: Reload Window');
  await reloaded;
  await waitForWorkbench(page);
  await page.locator('.tab', { hasText: 'Pinpoint: Tuning' }).click();
  tuning = await webviewFrame(page, '#loss');
  await tuning.locator('#status', { hasText: 'stopped' }).waitFor();
  assert.equal(await tuning.locator('#step').textContent(), `${stoppedAt} / 400`);
  await tuning.locator('vscode-button', { hasText: 'Resume' }).click();
  await tuning.locator('#status', { hasText: 'done' }).waitFor({ timeout: 180_000 });
  assert.equal(await tuning.locator('#step').textContent(), '400 / 400');
  await panelScreenshot('tuning-resumed', '#loss');
});

function updateSettings(settings: Record<string, unknown>): void {
  const file = path.join(workspace, '.vscode', 'settings.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), ...settings }, null, 2));
}

/**
 * The webview showing `selector` alone in the editor area, scrolled to its top, for its screenshot (with the mouse
 * where `point` puts it, else out of the way); then the layout as it was.
 */
async function panelScreenshot(name: string, selector: string, point?: (frame: Frame) => Promise<void>): Promise<void> {
  if (await page.locator('.part.panel').isVisible()) await runCommand(page, 'View: Hide Panel');
  await runCommand(page, 'View: Toggle Maximize Editor Group');
  const frame = await webviewFrame(page, selector);
  await frame.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(150, 700);
  await point?.(frame);
  await page.waitForTimeout(500);
  await screenshot(page, name);
  await runCommand(page, 'View: Toggle Maximize Editor Group');
}

function readHeads(): HeadsFile {
  return JSON.parse(fs.readFileSync(onlyFile(path.join(workspace, '.pinpoint', 'heads'), 'heads.json'), 'utf8')) as HeadsFile;
}

/** `name` in the one folder under `root`. */
function onlyFile(root: string, name: string): string {
  const folders = fs.readdirSync(root);
  assert.equal(folders.length, 1, `${root} holds ${folders.join(', ')}`);
  return path.join(root, folders[0], name);
}

/** The model Open Demo made the workspace's. */
function demoModel(): string {
  const settings = JSON.parse(fs.readFileSync(path.join(workspace, '.vscode', 'settings.json'), 'utf8')) as Record<string, string>;
  return settings['pinpoint.model'];
}

/** The evaluation of the sample file by the model named `model` (its folder's name), as its files hold it. */
function evaluation(model: string): EvaluationRun {
  const root = path.join(workspace, '.pinpoint', 'evaluations');
  const folders = fs.readdirSync(root).filter((f) => f.startsWith(`sample-eval-${model}-`));
  assert.equal(folders.length, 1, `${root} holds ${fs.readdirSync(root).join(', ')}`);
  return readEvaluationRun(path.join(root, folders[0]));
}

function percent(rate: number | null): string {
  return rate === null ? 'n/a' : `${(100 * rate).toFixed(1)}%`;
}

interface Pixels {
  total: number;
  /** pixels not fully transparent */
  painted: number;
  /** distinct colours among them */
  colours: number;
  /** their mean luminance, 0 to 255 */
  luminance: number;
}

/** What is drawn on a canvas, read back from its pixels. */
function canvasPixels(frame: Frame, selector: string): Promise<Pixels> {
  return frame.$eval(selector, (canvas) => {
    const c = canvas as HTMLCanvasElement;
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    let luminance = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      painted++;
      luminance += 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
      colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    return { total: c.width * c.height, painted, colours: colours.size, luminance: luminance / Math.max(1, painted) };
  });
}
