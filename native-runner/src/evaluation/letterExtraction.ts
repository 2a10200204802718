/**
 * The answer letter of a reply, by three rules tried in order, each taking its first match among the item's
 * letters: "(X)", then "X)" not preceded by a letter or digit, then a lone capital X with no letter or digit on
 * either side. A reply that names no letter has no answer (and so is not correct).
 */

export interface ExtractedLetter {
  letter: string;
  /** index of the letter in the reply */
  index: number;
}

const RULES: Array<(letters: string) => RegExp> = [
  (letters) => new RegExp(`\\(([${letters}])\\)`, 'g'),
  (letters) => new RegExp(`(?<![\\p{L}\\p{N}])([${letters}])\\)`, 'gu'),
  (letters) => new RegExp(`(?<![\\p{L}\\p{N}])([${letters}])(?![\\p{L}\\p{N}])`, 'gu'),
];

export function extractLetter(reply: string, letters: readonly string[]): ExtractedLetter | null {
  const allowed = letters.join('');
  for (const rule of RULES) {
    const match = rule(allowed).exec(reply);
    if (match) return { letter: match[1], index: match.index + match[0].indexOf(match[1]) };
  }
  return null;
}
