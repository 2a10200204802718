import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { WeightIndex } from '../checkpoint/safetensors';
import { cacheRoot, writeFileAtomic } from './weightFile';

/**
 * What identifies a checkpoint's weights: the SHA-256 of their content. A path, a size and a modification time do
 * not: weights replaced in place, with their mtime restored, would be served from a stale weight cache or mixed into
 * a resumed evaluation. Hashing a 16 GB checkpoint takes a while, so each file's hash is cached, in an entry that
 * holds only while the file is unchanged: same device, inode, size, mtime and ctime (which any rewrite or replacement
 * changes, whatever is done to mtime). The entry is named by the file's device and inode, not its path, so a model
 * folder moved within its filesystem keeps it.
 */

const FORMAT = 'pinpoint-sha256/1';
const READ_BYTES = 1 << 24;
const SHA256 = /^[0-9a-f]{64}$/;

interface CacheEntry {
  format: typeof FORMAT;
  /** the stat fields that must not have changed, as decimal strings (exact, in nanoseconds) */
  key: FileKey;
  sha256: string;
  /** where the file was when it was hashed, for whoever reads the entry */
  file: string;
}

interface FileKey {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/** One hash over every weight file's SHA-256, in order: what tuned checkpoints record of their base. */
export function weightsSha256(weights: Pick<WeightIndex, 'files'>): string {
  const hash = crypto.createHash('sha256');
  for (const file of weights.files) hash.update(cachedSha256(file));
  return hash.digest('hex');
}

/** A file's SHA-256 from its cache entry while the file is unchanged, else read anew and the entry rewritten. */
export function cachedSha256(file: string): string {
  const key = fileKey(file);
  const entryFile = entryPath(key);
  const cached = readEntry(entryFile);
  if (cached && JSON.stringify(cached.key) === JSON.stringify(key)) return cached.sha256;
  const sha256 = sha256File(file);
  fs.mkdirSync(path.dirname(entryFile), { recursive: true });
  const entry: CacheEntry = { format: FORMAT, key, sha256, file: path.resolve(file) };
  writeFileAtomic(entryFile, JSON.stringify(entry));
  return sha256;
}

/** Where the hash of `file` is cached. */
export function sha256CacheEntry(file: string): string {
  return entryPath(fileKey(file));
}

/** By what the file is on this machine, its device and inode. */
function entryPath(key: FileKey): string {
  return path.join(cacheRoot(), 'sha256', `${key.dev}-${key.ino}.json`);
}

function fileKey(file: string): FileKey {
  const s = fs.statSync(file, { bigint: true });
  return { dev: String(s.dev), ino: String(s.ino), size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs) };
}

/** The entry, or undefined when it is missing or not one this code wrote (a damaged entry is recomputed, never trusted). */
function readEntry(file: string): CacheEntry | undefined {
  let entry: Partial<CacheEntry>;
  try {
    entry = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<CacheEntry>;
  } catch {
    return undefined;
  }
  const valid = entry?.format === FORMAT && typeof entry.sha256 === 'string' && SHA256.test(entry.sha256) && typeof entry.key === 'object';
  return valid ? (entry as CacheEntry) : undefined;
}

/** Streams the file through the hash, so that a checkpoint of any size needs one buffer of memory. */
export function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  try {
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
