import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/**
 * code-server (VS Code's server and web workbench) as the editor tests run it: installed by
 * scripts/install-editor-tests.sh into .cache/code-server, started on a free port with throwaway user data,
 * extensions and config, no auth and no gallery, so that nothing reaches the network or the user's settings.
 */

export const ROOT = path.resolve(__dirname, '..', '..', '..');
const ENTRY = path.join(ROOT, '.cache', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export interface CodeServer {
  url: string;
  extensionsDir: string;
  /** everything code-server wrote to stdout and stderr, for failure messages */
  log(): string;
  stop(): Promise<void>;
}

export function requireInstalled(): void {
  if (!fs.existsSync(ENTRY)) throw new Error(`code-server is not installed (${ENTRY}); run scripts/install-editor-tests.sh first`);
}

interface Dirs {
  userData: string;
  extensions: string;
  config: string;
}

/** A clean window, read at startup: no welcome page, no trust prompt, no tips, no secondary side bar. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'security.workspace.trust.enabled': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

function dirs(base: string): Dirs {
  const d = { userData: path.join(base, 'user-data'), extensions: path.join(base, 'extensions'), config: path.join(base, 'config.yaml') };
  fs.mkdirSync(path.join(d.userData, 'User'), { recursive: true });
  fs.mkdirSync(d.extensions, { recursive: true });
  fs.writeFileSync(d.config, 'auth: none\n');
  fs.writeFileSync(path.join(d.userData, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  return d;
}

function args(d: Dirs): string[] {
  return [
    '--config',
    d.config,
    '--user-data-dir',
    d.userData,
    '--extensions-dir',
    d.extensions,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
  ];
}

const env = (extra: NodeJS.ProcessEnv) => ({ ...process.env, EXTENSIONS_GALLERY: '{}', ...extra });

/** A fresh set of code-server folders under `base`. */
export function codeServerHome(base: string): Dirs {
  return dirs(base);
}

export function installExtension(home: Dirs, vsix: string): void {
  const result = spawnSync(process.execPath, [ENTRY, ...args(home), '--install-extension', vsix, '--force'], { env: env({}), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed:\n${result.stdout}\n${result.stderr}`);
}

export async function startCodeServer(home: Dirs, extraEnv: NodeJS.ProcessEnv = {}): Promise<CodeServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [ENTRY, ...args(home), '--bind-addr', `127.0.0.1:${port}`, '--ignore-last-opened'], {
    env: env(extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, child, () => log);
  return { url, extensionsDir: home.extensions, log: () => log, stop: () => stop(child) };
}

async function waitForHttp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}:\n${log()}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`code-server did not answer at ${url} within 60 s:\n${log()}`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
