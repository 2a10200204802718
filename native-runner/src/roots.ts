import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The folders `pinpoint serve` may read and write under (`--root`, `runner/addRoots`): the extension names the
 * workspace's folders, its storage and what the user chose, so that no request can reach anything else. A path is
 * judged by what a file operation on it would reach, symbolic links and `..` followed as the OS follows them.
 */
export class Roots {
  private readonly folders: string[] = [];

  /** With no roots the runner is unrestricted, as on the command line; adding roots then changes nothing. */
  readonly restricted: boolean;

  constructor(roots: string[]) {
    this.restricted = roots.length > 0;
    this.add(roots);
  }

  add(roots: string[]): void {
    if (!this.restricted) return;
    for (const root of roots) {
      const reached = reachedPath(root);
      if (!this.folders.includes(reached)) this.folders.push(reached);
    }
  }

  /** Refuses a request naming a path outside the roots; values that are not paths are left to the params' check. */
  check(method: string, paths: Record<string, unknown>): void {
    if (!this.restricted) return;
    for (const [field, value] of Object.entries(paths)) {
      if (typeof value !== 'string' || value === '') continue;
      const reached = reachedPath(value);
      if (this.folders.some((root) => isUnder(reached, root))) continue;
      const via = reached === path.resolve(value) ? '' : ` (which leads to ${reached})`;
      throw new RangeError(`${method}: ${field} ${value}${via} is outside the folders this runner may use: ${this.folders.join(', ')}`);
    }
  }
}

/** On Windows both separators divide a path. */
const SEPARATORS = path.sep === '\\' ? /[\\/]/ : /\//;

/**
 * The absolute path an operation on `file` reaches. `path.resolve` alone would take `link/..` lexically, to the
 * folder holding the link, where the OS goes to the parent of the link's target; so the path is walked one part
 * at a time, each existing prefix replaced by its real path.
 */
export function reachedPath(file: string): string {
  // joined without normalising, which would take `..` lexically
  const absolute = path.isAbsolute(file) ? file : `${process.cwd()}${path.sep}${file}`;
  const { root } = path.parse(absolute);
  let reached = root;
  for (const part of absolute.slice(root.length).split(SEPARATORS)) {
    if (part === '' || part === '.') continue;
    reached = part === '..' ? path.dirname(reached) : followLinks(path.join(reached, part));
  }
  return reached;
}

function followLinks(file: string): string {
  try {
    return fs.realpathSync.native(file);
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new RangeError(`${file} cannot be resolved (${code})`, { cause: err });
    // a link to something missing: writing through it would create its target, wherever that is
    if (isLink(file)) throw new RangeError(`${file} is a symbolic link to something that does not exist`, { cause: err });
    return file;
  }
}

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

function isUnder(file: string, root: string): boolean {
  const relative = path.relative(root, file);
  return relative === '' || (!path.isAbsolute(relative) && relative !== '..' && !relative.startsWith(`..${path.sep}`));
}
