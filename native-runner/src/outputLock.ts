import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One run at a time per output folder: `<folder>/.pinpoint.lock` names the process that writes the folder, and
 * any other run on it is refused while that process lives. Two runs appending to one results.jsonl would each
 * write every item. A lock left by a process that is gone (killed with SIGKILL, or the machine lost power) is
 * taken over, so that a killed run can be resumed; a process that ends normally, by an error or by SIGINT, SIGTERM
 * or SIGHUP removes its locks.
 */

export const LOCK_FILE = '.pinpoint.lock';

export interface LockHolder {
  pid: number;
  host: string;
  /** the holder's command line */
  command: string;
  /** what it writes there: evaluation, knockout, tuning, ... */
  job: string;
  /** ISO 8601 */
  startedAt: string;
}

export class FolderInUseError extends Error {
  constructor(
    readonly lockFile: string,
    readonly holder: LockHolder,
  ) {
    super(
      `${path.dirname(lockFile)} is in use by another run: ${describeHolder(holder)}; wait for it to end or choose another ` +
        `output folder (if no such process is running, remove ${lockFile})`,
    );
  }
}

/** This process's locks, by folder: what exit and signal handlers remove. */
const held = new Map<string, OutputLock>();
const RELEASING_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const ATTEMPTS = 3;

export class OutputLock {
  private constructor(
    readonly dir: string,
    private readonly file: string,
    private readonly record: string,
  ) {}

  /**
   * Takes `dir` (created if missing) for `job`, or throws FolderInUseError naming the live holder. A lock of
   * this very process is an earlier run of it on the folder that ended by an error without releasing it: a process
   * runs one job on a folder at a time (the server runs its jobs one after another).
   */
  static take(dir: string, job: string): OutputLock {
    const folder = path.resolve(dir);
    held.get(folder)?.release();
    fs.mkdirSync(folder, { recursive: true });
    const file = path.join(folder, LOCK_FILE);
    const record = JSON.stringify(thisProcess(job));
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (created(file, record)) return hold(new OutputLock(folder, file, record));
      const found = readLock(file);
      if (found === undefined) continue; // released between the two
      if (holderRunning(found.holder)) throw new FolderInUseError(file, found.holder);
      if (removedIfUnchanged(file, found.text))
        say(`${file} was left by a run that is no longer running (${describeHolder(found.holder)}); taking the folder over`);
    }
    throw new Error(`${file} kept changing while this run tried to take ${folder}: other runs are starting on it; try again`);
  }

  /** Removes the lock, unless another run has (wrongly) replaced it since. */
  release(): void {
    if (held.get(this.dir) === this) held.delete(this.dir);
    try {
      if (fs.readFileSync(this.file, 'utf8') === this.record) fs.unlinkSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** `fn` with `dir` held for `job`, released however it ends. */
export async function withOutputLock<T>(dir: string, job: string, fn: () => Promise<T>): Promise<T> {
  const lock = OutputLock.take(dir, job);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Only ESRCH says a process is gone: EPERM means it runs as another user. */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Another host's processes cannot be seen, so its locks are taken for live ones. One naming this process is not
 * one it holds (take released those first): it was left by an earlier process that had the same pid, as processes
 * in containers often do.
 */
function holderRunning(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true;
  return holder.pid !== process.pid && processRunning(holder.pid);
}

function thisProcess(job: string): LockHolder {
  const command = ['pinpoint', ...process.argv.slice(2)].join(' ');
  return { pid: process.pid, host: os.hostname(), command, job, startedAt: new Date().toISOString() };
}

function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host}, ${h.job} since ${h.startedAt} (${h.command})`;
}

/**
 * Exclusive creation, of two runs creating the lock at once exactly one succeeding, and of a complete lock: written
 * aside, then hard-linked into place, which fails where a lock exists. A lock created empty and then written would
 * be read empty by a run starting in between, and left empty by a kill in between.
 */
function created(file: string, record: string): boolean {
  const aside = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(aside, record);
  try {
    fs.linkSync(aside, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    return createdInPlace(file, record);
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

/** Where the filesystem has no hard links (FAT): created empty, then written. */
function createdInPlace(file: string, record: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, record);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * The lock's holder, or undefined when there is no lock any more. A lock that does not parse is not taken over:
 * on a filesystem without hard links it may be one being written this instant.
 */
function readLock(file: string): { text: string; holder: LockHolder } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const holder = parseHolder(text);
  if (!holder) {
    throw new Error(
      `${file} is not a lock pinpoint can read (expected JSON {"pid", "host", "command", "job", "startedAt"}, found ${JSON.stringify(text.slice(0, 200))}); ` +
        `if no run is writing ${path.dirname(file)}, remove it`,
    );
  }
  return { text, holder };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    const valid = Number.isInteger(h.pid) && [h.host, h.command, h.job, h.startedAt].every((s) => typeof s === 'string');
    return valid ? (h as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes a dead run's lock, unless another run took it over since it was read: the lock is moved aside first
 * (one rename wins), and put back if it turns out to be someone else's.
 */
function removedIfUnchanged(file: string, text: string): boolean {
  const aside = `${file}.stale-${process.pid}`;
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (fs.readFileSync(aside, 'utf8') === text) {
    fs.unlinkSync(aside);
    return true;
  }
  fs.renameSync(aside, file);
  return false;
}

function hold(lock: OutputLock): OutputLock {
  listen();
  held.set(lock.dir, lock);
  return lock;
}

let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  process.on('exit', releaseAll);
  for (const signal of RELEASING_SIGNALS) process.on(signal, onSignal);
}

function releaseAll(): void {
  for (const lock of [...held.values()]) lock.release();
}

/** Releases and dies of the signal, as with no handler; where another handler decides, 'exit' releases. */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  releaseAll();
  process.removeListener(signal, onSignal);
  process.kill(process.pid, signal);
}

function say(line: string): void {
  process.stderr.write(`pinpoint: ${line}\n`);
}
