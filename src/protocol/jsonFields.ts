/**
 * Reading the fields of one parsed JSON line, with errors that name the field and what was expected. A
 * `LineError` carries only the reason: the file parser prefixes it with file:line.
 */

export class LineError extends Error {}

/**
 * The longest line, in characters, of the JSON Lines files Pinpoint reads (evaluation items, training
 * conversations): no prompt a model is run on is this long, and a longer line is refused as a bad line rather than
 * tokenized and sent to ONNX Runtime, which would fail allocating it and name no line.
 */
export const MAX_LINE_LENGTH = 1_000_000;

export function checkLineLength(content: string): void {
  if (content.length > MAX_LINE_LENGTH) {
    throw new LineError(`the line is ${content.length} characters long, over the limit of ${MAX_LINE_LENGTH} characters a line`);
  }
}

/** Editors on Windows save UTF-8 with a byte order mark, which JSON.parse would reject as part of the first line. */
export function withoutByteOrderMark(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  return typeof value === 'string' ? `the string ${JSON.stringify(value)}` : `a ${typeof value}`;
}

export function requiredField(obj: JsonObject, name: string, where = ''): unknown {
  if (!(name in obj) || obj[name] === undefined) throw new LineError(`missing field "${where}${name}"`);
  return obj[name];
}

export function text(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new LineError(`"${field}" must be a string, not ${describe(value)}`);
  if (value.trim() === '') throw new LineError(`"${field}" must not be empty`);
  return value;
}

export function textList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new LineError(`"${field}" must be a non-empty list of strings, not ${describe(value)}`);
  return value.map((entry, i) => text(entry, `${field}[${i}]`));
}

export function object(value: unknown, field: string): JsonObject {
  if (!isObject(value)) throw new LineError(`"${field}" must be an object, not ${describe(value)}`);
  return value;
}

/**
 * Typos such as "answer" for "answers" would otherwise turn an item into something else silently. `why` says
 * why the line was read as this format, where its fields could belong to another.
 */
export function rejectUnknownFields(obj: JsonObject, known: readonly string[], why?: string): void {
  const unknown = Object.keys(obj).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    const because = why === undefined ? '' : `; ${why}`;
    throw new LineError(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})${because}`,
    );
  }
}
