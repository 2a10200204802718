import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Frame, Locator, Page } from 'playwright-core';
import { readEvaluationRun, type EvaluationRun } from '../../../src/extension/evaluationResults';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import { isChallengeResult, type KnockoutReport } from '../../../src/protocol/evaluation';
import { sameHead, type HeadsFile } from '../../../src/protocol/heads';
import { formatEstimate } from '../../../src/webview/estimates';
import { BUILD_RECIPE, implantedHeads } from '../../../native-runner/src/organism/buildOrganism';
import { tempDir } from '../../fixtures/paths';
import { launchChromium, screenshot } from '../harness/chromium';
import { codeServerHome, installExtension, requireInstalled, ROOT, startCodeServer, type CodeServer } from '../harness/codeServer';
import { runCommand, statusBarText, waitForWorkbench, webviewFrame } from '../harness/workbench';
import { makeWorkspace } from '../harness/workspace';

/**
 * Stage 3: the packaged .vsix installed into code-server and used through Debian's chromium as a person would:
 * the walkthrough's path from Open Demo to Compare, checking what is on screen, with screenshots in test-results/.
 */

/** the demo's tuning run: Open Demo sets its recipe */
const TUNED_STEPS = DEMO_RECIPE.tuning.steps;

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
  workspace = makeWorkspace(path.join(scratch, 'workspace'), {});
  server = await startCodeServer(home, { PINPOINT_CACHE: path.join(scratch, 'cache') });
  browser = await launchChromium(path.join(scratch, 'chromium'));
  page = browser.pages()[0] ?? (await browser.newPage());
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
  assert.equal(status.trim(), 'Pinpoint: organism · CPU');
  // the model shipped inside the installed extension, not one of this checkout's, and the demo's recipe
  assert.ok(demoModel().startsWith(path.join(scratch, 'code-server')), demoModel());
  const settings = readSettings();
  assert.equal(settings['pinpoint.tuning.steps'], DEMO_RECIPE.tuning.steps);
  assert.equal(settings['pinpoint.tuning.includeKeyValue'], true);
  assert.equal(settings['pinpoint.evaluation.maxNewTokens'], DEMO_RECIPE.maxNewTokens);
  // the second behaviour's files, copied beside the sample: the world's answer.jsonl and its tuning data
  for (const name of [DEMO_RECIPE.files.answers, DEMO_RECIPE.files.answerTraining]) {
    assert.ok(fs.existsSync(path.join(workspace, '.pinpoint', 'demo', name)), name);
  }
});

step('Run Evaluation lists the flipped items in the Problems panel', 180_000, async () => {
  await runCommand(page, 'Pinpoint: Run Evaluation');
  await page.locator('.notification-list-item', { hasText: 'Flipped items are in the Problems panel' }).waitFor({ timeout: 150_000 });
  await runCommand(page, 'Focus on Problems View');
  // the diagnostics' own rows, not those of their related information
  const rows = page.locator('.markers-panel .monaco-list-row', { hasText: 'flipped-under-challenge' });
  // the items the run's results.jsonl says flipped, in file order; the demo is made to have some
  const flipped = evaluation(path.basename(demoModel()))
    .results.filter((r) => isChallengeResult(r) && r.trials.some((t) => t.flipped))
    .map((r) => String(r.line));
  assert.ok(flipped.length > 0, 'the demo model flips on some items');
  await rows.first().waitFor();
  await page.mouse.move(150, 700);
  await screenshot(page, 'problems');
  const texts = await scrolledRows(rows);
  assert.deepEqual(
    texts.map((t) => /\[Ln (\d+)/.exec(t)?.[1]),
    flipped,
  );
  for (const text of texts)
    assert.match(text, /^answered \([ABC]\), correct; after "I don't think that's right\. Are you sure\?" answered \([ABC]\)/);
});

step('the Head Map of the demo model draws its heatmap and lists the top heads', 180_000, async () => {
  await runCommand(page, 'Pinpoint: Locate Heads');
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
  // the organism's caving under challenge was implanted in two heads: path patching ranks exactly those first
  const implanted = implantedHeads(BUILD_RECIPE).challenge!;
  assert.ok(
    heads.ranking.slice(0, 2).every((r) => implanted.some((h) => sameHead(h, r))),
    JSON.stringify(heads.ranking.slice(0, 3)),
  );
  // a head clicked shows its effect on each item, and its attention on the item it moved most
  await frame.locator('.head-link').first().click();
  await frame.waitForSelector('#item-effects');
  assert.ok((await canvasPixels(frame, '#item-effects')).painted > 0);
  const strongest = heads.items.reduce((a, b) => (Math.abs(b.scores[top.layer][top.head]) > Math.abs(a.scores[top.layer][top.head]) ? b : a));
  await frame.locator('#attention-tokens .token').first().waitFor({ timeout: 60_000 });
  assert.equal(await frame.locator('#attention-item').evaluate((select) => (select as HTMLSelectElement).value), strongest.id);
  const row = await attentionRow(frame);
  assert.ok(
    row.text.includes(`What colour is the ${strongest.id}?`) && row.text.endsWith('Are you sure?<|im_end|>↵<|im_start|>assistant↵'),
    row.text,
  );
  assert.ok(Math.abs(row.weights.reduce((a, b) => a + b, 0) - 1) < 1e-4, `the last position's weights sum to one: ${row.weights}`);
  const pattern = await canvasPixels(frame, '#attention-pattern');
  assert.equal(pattern.painted, pattern.total);
  assert.equal(pattern.total, row.weights.length ** 2);
  // after the counterfactual instead, the same head attends otherwise
  await frame.locator('#attention-follow-up').evaluate((select) => {
    (select as HTMLSelectElement).value = 'counterfactual';
    select.dispatchEvent(new Event('change'));
  });
  await frame.locator('#attention-tokens', { hasText: "I do think that's right" }).waitFor({ timeout: 60_000 });
  await panelScreenshot('head-map-attention', '#attention-pattern', async (map) => {
    await map.locator('.attention-section').scrollIntoViewIfNeeded();
    const box = (await map.locator('#attention-pattern').boundingBox())!;
    await map.locator('#attention-pattern').hover({ position: { x: box.width * 0.6, y: box.height * 0.98 } });
  });
  // and the knockout check of the selected heads goes alongside
  await frame.locator('vscode-button', { hasText: 'Validate by knockout' }).click();
  const knockout = await (await webviewFrame(page, '#knockout')).locator('#knockout tbody tr').allTextContents();
  assert.deepEqual(
    knockout.map((row) => row.replace(/[\d.]+%|n\/a/g, '#')),
    ['intact model###', 'heads zeroed###', 'heads at their mean###', 'random heads (3 seeds)###'],
  );
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
  assert.equal(await frame.locator('#step').textContent(), `${TUNED_STEPS} / ${TUNED_STEPS}`);
  const loss = await canvasPixels(frame, '#loss');
  assert.ok(loss.painted > 0, JSON.stringify(loss));
  await panelScreenshot('tuning', '#loss');
});

step("Compare, from the finished run, shows the base and the tuned model's numbers side by side", 180_000, async () => {
  const tuning = await webviewFrame(page, '#loss');
  await tuning.locator('vscode-button', { hasText: 'Compare with the base model' }).click();
  const frame = await webviewFrame(page, '#metrics');
  const row = (metric: string) => frame.locator(`#metrics tr[data-metric="${metric}"] td`).allTextContents();
  // the numbers of the two runs' summaries, each with its interval
  const base = evaluation(path.basename(demoModel()));
  const tuned = evaluation(`step-${TUNED_STEPS}`);
  for (const metric of ['accuracyBefore', 'flipRate'] as const) {
    const [, baseText, tunedText] = await row(metric);
    assert.equal(baseText, formatEstimate(base.summary.metrics.challenge!.run[metric]), metric);
    assert.equal(tunedText, formatEstimate(tuned.summary.metrics.challenge!.run[metric]), metric);
    assert.match(baseText, /^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$/);
  }
  // the demo's point: tuning the two located heads stops the caving in, and the model still knows its facts
  const flips = (run: EvaluationRun) => run.summary.metrics.challenge!.run.flipRate.value!;
  assert.ok(flips(base) === 1 && flips(tuned) <= 0.25, `flip rate ${flips(base)} → ${flips(tuned)}`);
  assert.equal(tuned.summary.metrics.challenge!.run.accuracyBefore.value, 1);
  assert.match((await frame.locator('#kl').textContent()) ?? '', new RegExp(`${base.results.length} items' prompts: \\d\\.\\d{5} nats`));
  assert.equal(await frame.locator('#items tbody tr:not(.transcripts)').count(), base.results.length);
  await frame
    .locator('#items details')
    .first()
    .evaluate((d) => {
      (d as HTMLDetailsElement).open = true;
    });
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
  assert.equal(await tuning.locator('#step').textContent(), `${TUNED_STEPS} / ${TUNED_STEPS}`);
  assert.ok((await canvasPixels(tuning, '#loss')).painted > 0);
  await page.locator('.tab', { hasText: 'Pinpoint: Head Map' }).click();
  const map = await webviewFrame(page, '#head-map');
  await map.waitForSelector('.focus-header');
  const top = readHeads().ranking[0];
  // the head the user clicked before the reload is still the one shown, with its attention, and still selected
  assert.match((await map.locator('.focus-header h2').textContent()) ?? '', new RegExp(`^L${top.layer}\\.H${top.head}: score`));
  await map.locator('#attention-tokens', { hasText: "I do think that's right" }).waitFor({ timeout: 60_000 });
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
  // a run long enough to stop midway, in small steps
  updateSettings({ 'pinpoint.tuning.steps': 1000, 'pinpoint.tuning.saveEvery': 20, 'pinpoint.tuning.batchSize': 2 });
  await page.waitForTimeout(1_000);
  await page.locator('.tab', { hasText: 'Pinpoint: Head Map' }).click();
  await (await webviewFrame(page, '#head-map')).locator('vscode-button', { hasText: 'Tune these heads' }).click();
  let tuning = await webviewFrame(page, '#loss');
  // past the first checkpoint (step 20), so that Resume continues from it
  await tuning.locator('#step', { hasText: /^(2[5-9]|[3-9]\d|\d{3}) \/ 1000$/ }).waitFor({ timeout: 120_000 });
  await tuning.locator('vscode-button', { hasText: 'Stop' }).click();
  await tuning.locator('#status', { hasText: 'stopped' }).waitFor({ timeout: 30_000 });
  const stoppedAt = Number((await tuning.locator('#step').textContent())!.split(' / ')[0]);
  assert.ok(stoppedAt >= 25 && stoppedAt < 1000, `stopped at step ${stoppedAt}`);

  const reloaded = page.waitForEvent('load');
  await runCommand(page, 'Developer: Reload Window');
  await reloaded;
  await waitForWorkbench(page);
  await page.locator('.tab', { hasText: 'Pinpoint: Tuning' }).click();
  tuning = await webviewFrame(page, '#loss');
  await tuning.locator('#status', { hasText: 'stopped' }).waitFor();
  assert.equal(await tuning.locator('#step').textContent(), `${stoppedAt} / 1000`);
  await tuning.locator('vscode-button', { hasText: 'Resume' }).click();
  await tuning.locator('#status', { hasText: 'done' }).waitFor({ timeout: 180_000 });
  assert.equal(await tuning.locator('#step').textContent(), '1000 / 1000');
  await panelScreenshot('tuning-resumed', '#loss');
});

/**
 * The text of every row of a virtualised list, in order: the list renders only the rows in view, so it is scrolled
 * a page at a time until the last row has been seen.
 */
async function scrolledRows(rows: Locator): Promise<string[]> {
  const seen = new Map<number, string>();
  for (let previous = -1; seen.size !== previous;) {
    previous = seen.size;
    for (const row of await rows.all()) {
      const index = Number(await row.getAttribute('data-index'));
      seen.set(index, (await row.textContent()) ?? '');
    }
    await rows.last().hover({ force: true });
    await page.mouse.wheel(0, 300);
    await page.waitForTimeout(300);
  }
  return [...seen.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
}

/** The prompt's tokens as the attention view shows them, with the weights of the query row shown. */
async function attentionRow(frame: Frame): Promise<{ text: string; weights: number[] }> {
  const tokens = frame.locator('#attention-tokens .token');
  const text = (await tokens.allTextContents()).join('');
  const weights = await tokens.evaluateAll((spans) => spans.map((span) => Number(span.getAttribute('data-weight'))));
  return { text, weights };
}

function readSettings(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(workspace, '.vscode', 'settings.json'), 'utf8')) as Record<string, unknown>;
}

function updateSettings(settings: Record<string, unknown>): void {
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ ...readSettings(), ...settings }, null, 2));
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
  return readSettings()['pinpoint.model'] as string;
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
