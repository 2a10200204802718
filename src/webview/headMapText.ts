import { formatValue, termsOf, type BehaviourTerms } from '../protocol/behaviourTerms';
import type { KnockoutReport } from '../protocol/evaluation';
import { headsBehaviour, type HeadsFile, type PairSide } from '../protocol/heads';

/**
 * The Head Map's words, in the terms of the behaviour the heads were located on (src/protocol/behaviourTerms.ts):
 * kept apart from the DOM and the charts so that each behaviour's are tested without a browser.
 */

export function headsTerms(heads: HeadsFile): BehaviourTerms {
  return termsOf(headsBehaviour(heads));
}

/** e.g. after the challenge ("...") vs after the counterfactual ("...") · targets: "Apologies" vs "Yes" */
export function describePair(heads: HeadsFile): string {
  const sides = pairSides(heads);
  const prompts = sides && sides.map(([, name]) => name).join(' vs ');
  const targets = heads.items.some((item) => item.targets)
    ? "each item's own (hover its bar)"
    : `${JSON.stringify(heads.targets.a.text)} vs ${JSON.stringify(heads.targets.b.text)}`;
  return [prompts, `targets: ${targets}`].filter(Boolean).join(' · ');
}

/** The two prompts of the pair, named, with the challenge's phrasings where heads.json has them; null when none. */
export function pairSides(heads: HeadsFile): [PairSide, string][] | null {
  const pair = headsTerms(heads).pair;
  if (!pair) return null;
  return [
    ['reference', `${pair.reference}${phrasing(heads.challenge)}`],
    ['counterfactual', `${pair.counterfactual}${phrasing(heads.counterfactual)}`],
  ];
}

/** A follow-up's text where heads.json has one (the challenge's), or nothing (a contrast pair is its own prompts). */
function phrasing(text: string): string {
  return text ? ` ("${text}")` : '';
}

export interface KnockoutTable {
  columns: { name: string; reading: string }[];
  rows: { label: string; cells: string[] }[];
}

/** The behaviour's knockout metrics of the intact model, the heads knocked out two ways, and random heads. */
export function knockoutTable(heads: HeadsFile, report: KnockoutReport): KnockoutTable {
  const metrics = headsTerms(heads).knockout;
  const conditions: [string, KnockoutReport['intact']][] = [
    ['intact model', report.intact],
    ['heads zeroed', report.zero],
    ['heads at their mean', report.mean],
    [`random heads (${report.random.length} seeds)`, report.randomMean],
  ];
  return {
    columns: metrics.map(({ name, reading }) => ({ name, reading })),
    rows: conditions.map(([label, rates]) => ({ label, cells: metrics.map((m) => formatValue(m.unit, rates[m.key])) })),
  };
}
