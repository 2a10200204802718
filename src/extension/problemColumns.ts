import { findNodeAtLocation, parseTree, type JSONPath, type Node, type ParseError } from 'jsonc-parser';

/**
 * Where on its line a problem of an evaluation file lies. The evaluation-file parser reports a line and a reason;
 * the reason names the field at fault in quotes ("messages[1].role", "correct"), or quotes a value after the field's
 * name (duplicate id "x"), so the line is parsed again here with offsets kept: a syntax error points at the
 * offending token, a field problem at the field's value (or, for an unknown field, its name), a missing field at the
 * object that lacks it.
 */

export interface Columns {
  /** 0-based, in UTF-16 code units as editors count them */
  start: number;
  end: number;
}

export function problemColumns(line: string, reason: string): Columns {
  const errors: ParseError[] = [];
  const root = parseTree(line, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length > 0 || !root) return syntaxErrorColumns(line, errors[0]);
  const paths = quotedFields(reason);
  for (const field of [...paths, ...namedBeforeQuotes(reason)]) {
    const node = findNodeAtLocation(root, field);
    if (node) return columnsOf(reason.startsWith('unknown field') ? keyOf(node) : node);
  }
  // a missing field: the innermost object on the path to it that exists
  for (const field of paths) {
    for (let length = field.length - 1; length > 0; length--) {
      const parent = findNodeAtLocation(root, field.slice(0, length));
      if (parent) return columnsOf(parent);
    }
  }
  return columnsOf(root);
}

function syntaxErrorColumns(line: string, error: ParseError | undefined): Columns {
  // with no error reported the line is valid JSON but not a value jsonc-parser builds a tree for: mark all of it
  if (!error) return { start: 0, end: line.length };
  const start = Math.min(error.offset, Math.max(0, line.length - 1));
  return { start, end: Math.max(start + 1, Math.min(line.length, error.offset + error.length)) };
}

/** "messages[1].role" → ["messages", 1, "role"]; quoted text that is not a field path is left out. */
function quotedFields(reason: string): JSONPath[] {
  return [...reason.matchAll(/"([A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_]\w*)*)"/g)].map(([, field]) =>
    [...field.matchAll(/([A-Za-z_]\w*)|\[(\d+)\]/g)].map(([, name, index]) => (name === undefined ? Number(index) : name)),
  );
}

/** `id "x"` → ["id"]: the word before a quoted value, which may name the field holding it. */
function namedBeforeQuotes(reason: string): JSONPath[] {
  return [...reason.matchAll(/([A-Za-z_]\w*) "/g)].map(([, name]) => [name]);
}

/** An object member's value node has the member as parent, whose first child is the key. */
function keyOf(value: Node): Node {
  return value.parent?.type === 'property' ? value.parent.children![0] : value;
}

function columnsOf(node: Node): Columns {
  return { start: node.offset, end: node.offset + node.length };
}
