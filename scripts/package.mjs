// Packages the extension as a platform-specific .vsix: `npm run package [-- --target linux-x64]` (default: this
// machine's platform). The runner loads onnxruntime-node's native binding from node_modules at run time, and
// onnxruntime-node ships every platform's binaries (hundreds of MB together), so each .vsix carries only its own
// platform's: .vscodeignore with its binaries line narrowed to the target's folder, as vsce's --ignoreFile. vsce
// must list the production dependencies (no --no-dependencies), or it leaves node_modules out whatever
// .vscodeignore says.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const ALL_BINARIES = '!node_modules/onnxruntime-node/bin/**';
const BINARIES = 'node_modules/onnxruntime-node/bin/napi-v6';
// VS Code's platform targets that onnxruntime-node has a binding for
const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

const { values } = parseArgs({ options: { target: { type: 'string', default: `${process.platform}-${process.arch}` }, out: { type: 'string' } } });
const target = values.target;
if (!(target in TARGETS)) throw new Error(`no onnxruntime-node binding for ${target}; targets: ${Object.keys(TARGETS).join(', ')}`);
const { name, version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const out = path.resolve(values.out ?? path.join(ROOT, `${name}-${target}-${version}.vsix`));

execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), '--production'], { cwd: ROOT, stdio: 'inherit' });

const ignore = fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8');
if (!ignore.split('\n').includes(ALL_BINARIES)) throw new Error(`.vscodeignore has no line ${ALL_BINARIES} to narrow to ${target}`);
const ignoreFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-package-')), '.vscodeignore');
fs.writeFileSync(ignoreFile, ignore.replace(ALL_BINARIES, `!${BINARIES}/${TARGETS[target]}/**`));
execFileSync(
  path.join(ROOT, 'node_modules', '.bin', 'vsce'),
  ['package', '--target', target, '--ignoreFile', ignoreFile, '--out', out, '--skip-license', '--allow-missing-repository'],
  { cwd: ROOT, stdio: 'inherit' },
);
fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
console.log(out);
