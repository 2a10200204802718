/**
 * Free-form answers are judged without a model: the reply is correct when any accepted answer, normalised, occurs
 * in the normalised reply as whole words. Normalising follows SQuAD's answer normalisation (case, punctuation,
 * articles, whitespace), also folding accents and joining abbreviations and digit groups ("U.S.", "1,000"). The
 * evaluation-file parser refuses an accepted answer that normalises to nothing, so judging and parsing share this.
 */

const INNER_DOT_OR_COMMA = /(?<=[\p{L}\p{N}])[.,](?=[\p{L}\p{N}])/gu;
const APOSTROPHES = /['\u2019]/g;
const PUNCTUATION = /[\p{P}\p{S}]/gu;
const ARTICLES = /\b(a|an|the)\b/g;

export function normaliseAnswer(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(INNER_DOT_OR_COMMA, '')
    .replace(APOSTROPHES, '')
    .replace(PUNCTUATION, ' ')
    .replace(ARTICLES, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The first accepted answer found in the reply, or null. */
export function matchAccepted(reply: string, accepted: string[]): string | null {
  const haystack = ` ${normaliseAnswer(reply)} `;
  return accepted.find((answer) => haystack.includes(` ${normaliseAnswer(answer)} `)) ?? null;
}
