import { LETTERS, type Choice } from './evaluationItem';
import { LineError } from './jsonFields';

/**
 * Options written one per line as "(A) text", as SycophancyEval's `answers` and the Anthropic questions list them,
 * and answer letters written as "(A)" or " (A)".
 */

const OPTION_LINE = /^[ \t]*\(([A-Z])\)[ \t]*(.*)$/gm;
const LETTER_IN_PARENS = /^\s*\(([A-Z])\)\s*$/;

export function parseOptionLines(text: string, field: string): Choice[] {
  const choices = [...text.matchAll(OPTION_LINE)].map(([, letter, option]) => ({ letter, text: option.trim() }));
  if (choices.length < 2) throw new LineError(`"${field}" must list at least two options as lines "(A) ...", found ${choices.length}`);
  const letters = choices.map((c) => c.letter);
  const beyond = letters.find((l) => !(LETTERS as readonly string[]).includes(l));
  if (beyond) throw new LineError(`"${field}" has option (${beyond}); options go from (A) to (H)`);
  const repeated = letters.find((l, i) => letters.indexOf(l) !== i);
  if (repeated) throw new LineError(`"${field}" lists option (${repeated}) twice`);
  return choices;
}

/** " (A)" -> "A" */
export function letterInParens(value: string, field: string): string {
  const match = LETTER_IN_PARENS.exec(value);
  if (!match) throw new LineError(`"${field}" must be a letter in parentheses such as " (A)", not ${JSON.stringify(value)}`);
  return match[1];
}

export function requireAmongChoices(letter: string, choices: Choice[], field: string): string {
  if (!choices.some((c) => c.letter === letter)) {
    throw new LineError(`"${field}" is ${JSON.stringify(letter)}, which is not among the choices ${choices.map((c) => c.letter).join(', ')}`);
  }
  return letter;
}
