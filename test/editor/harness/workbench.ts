import type { Frame, Page } from 'playwright-core';

/** Driving the VS Code web workbench as a person does: the command palette, the panels, the status bar. */

export async function waitForWorkbench(page: Page): Promise<void> {
  await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
}

/** The status bar entry whose text contains `text`, once it shows. */
export async function statusBarText(page: Page, text: string | RegExp, timeout = 60_000): Promise<string> {
  const item = page.locator('.statusbar-item', { hasText: text }).first();
  await item.waitFor({ timeout });
  return (await item.textContent()) ?? '';
}

/**
 * Runs a command by its palette title. The palette is opened from the title bar's command center rather than by
 * F1, which a focused webview would take. It lists the commands registered when it opens, so it is reopened until
 * the title shows (the extension may still be activating); an attempt the starting workbench disturbs is retried.
 */
export async function runCommand(page: Page, title: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await tryCommand(page, title))) {
    if (Date.now() > deadline) throw new Error(`the command palette has no "${title}"`);
  }
}

async function tryCommand(page: Page, title: string): Promise<boolean> {
  try {
    await page.keyboard.press('Escape');
    await page.locator('.command-center').click({ timeout: 5_000 });
    const input = page.locator('.quick-input-widget input');
    await input.fill(`>${title}`, { timeout: 5_000 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 3_000 });
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden', timeout: 5_000 });
    // off the command center, whose hover would cover the tabs below it
    await page.mouse.move(150, 700);
    return true;
  } catch {
    return false;
  }
}

/** The frame of the webview (nested iframes: iframe.webview, then #active-frame) whose page holds `selector`. */
export async function webviewFrame(page: Page, selector: string, timeout = 120_000): Promise<Frame> {
  const deadline = Date.now() + timeout;
  for (;;) {
    for (const frame of page.frames()) {
      if (frame.url().includes('webview') && (await frame.$(selector).catch(() => null))) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no webview shows ${selector}`);
    await page.waitForTimeout(250);
  }
}
