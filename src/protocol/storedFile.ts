import { describe, isObject, type JsonObject } from './jsonFields';

/**
 * Reading back a JSON file that Pinpoint wrote (heads.json, summary.json, knockout.json, pinpoint.json, latest.json):
 * one written by another version, cut short by a crash or edited by hand is refused with a message that names the
 * file and what was expected, rather than cast to its type and failing later, far from the cause. Each format's
 * module says which fields its readers rely on.
 */
export class StoredFileError extends Error {}

export type FieldKind = 'string' | 'number' | 'boolean' | 'object' | 'array';

export function parseStoredFile(text: string, file: string, format: string | undefined, fields: Record<string, FieldKind>): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StoredFileError(`${file}: not valid JSON (${(err as Error).message}); it may have been cut short or edited`, { cause: err });
  }
  if (!isObject(value)) throw new StoredFileError(`${file}: expected a JSON object, found ${describe(value)}`);
  if (format !== undefined && value.format !== format) {
    throw new StoredFileError(`${file}: expected a ${format} file, found format ${JSON.stringify(value.format ?? null)}`);
  }
  for (const [name, kind] of Object.entries(fields)) {
    if (!isKind(value[name], kind)) throw new StoredFileError(`${file}: "${name}" must be ${article(kind)}, not ${describe(value[name])}`);
  }
  return value;
}

function isKind(value: unknown, kind: FieldKind): boolean {
  if (kind === 'array') return Array.isArray(value);
  if (kind === 'object') return isObject(value);
  if (kind === 'number') return typeof value === 'number' && Number.isFinite(value);
  return typeof value === kind;
}

function article(kind: FieldKind): string {
  return kind === 'array' ? 'a list' : kind === 'object' ? 'an object' : `a ${kind}`;
}
