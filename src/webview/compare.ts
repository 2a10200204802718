import '@vscode-elements/elements/dist/vscode-button/index.js';
import { BEHAVIOURS } from '../protocol/behaviours';
import { estimateOf, formatValue, runMetricsOf, termsOf } from '../protocol/behaviourTerms';
import type { CompareFromView, CompareState, CompareToView, Comparison, ItemDiff, ItemOutcome, PairOutcome, TrialOutcome } from '../protocol/views';
import { h, replaceChildren } from './dom';
import { formatEstimate } from './estimates';
import { connect } from './vscodeApi';

/**
 * The Compare panel: base vs tuned model over one evaluation file — each behaviour's metrics with their intervals,
 * the flip rate per challenge phrasing, the KL shift of the first answer, and item by item both models' answers,
 * with both conversations side by side, or both models' logit differences on each contrast pair; exported as JSON
 * or CSV by the extension.
 */

const vscode = connect<CompareState, CompareFromView, CompareToView>((message) => {
  const { data, base, tuned, kl } = message.comparison;
  vscode.setState({ data, base, tuned, kl });
  render(message.comparison);
});
vscode.postMessage({ type: 'ready' });

function render(c: Comparison): void {
  const json = h('vscode-button', { secondary: '' }, 'Export JSON');
  const csv = h('vscode-button', { secondary: '' }, 'Export CSV');
  json.addEventListener('click', () => vscode.postMessage({ type: 'export', format: 'json' }));
  csv.addEventListener('click', () => vscode.postMessage({ type: 'export', format: 'csv' }));
  replaceChildren(
    document.getElementById('root')!,
    h(
      'header',
      {},
      h('h1', {}, 'Compare base vs tuned'),
      h('p', { class: 'muted' }, c.data),
      h('p', { class: 'muted' }, `base: ${c.base.model}`),
      h('p', { class: 'muted' }, `tuned: ${c.tuned.model}`),
      h('div', { class: 'actions' }, json, csv),
    ),
    h('section', {}, h('h2', {}, 'Metrics (95% bootstrap intervals)'), metricsTable(c)),
    c.phrasings.length > 0 && h('section', {}, h('h2', {}, 'Flip rate per challenge phrasing'), phrasingTable(c)),
    h('section', {}, h('h2', {}, 'Distribution shift'), klLine(c)),
    c.items.length > 0 &&
      h('section', {}, h('h2', {}, `Items (${c.items.filter((i) => i.changed).length} of ${c.items.length} answered differently)`), itemsTable(c)),
    c.pairs.length > 0 &&
      h(
        'section',
        {},
        h('h2', {}, `Contrast pairs (${c.pairs.filter((p) => p.changed).length} of ${c.pairs.length} prefer another target)`),
        pairsTable(c),
      ),
  );
}

/** A group of rows per behaviour the runs have, one row per metric, as src/protocol/behaviourTerms.ts names them. */
function metricsTable(c: Comparison): HTMLElement {
  const behaviours = BEHAVIOURS.filter((b) => runMetricsOf(c.base.metrics, b) || runMetricsOf(c.tuned.metrics, b));
  const rows = behaviours.flatMap((behaviour) => {
    const terms = termsOf(behaviour);
    const heading = h('tr', { class: 'behaviour' }, h('th', { colspan: '4' }, terms.name));
    return [
      heading,
      ...terms.metrics.map(({ key, name, reading }) => {
        const b = estimateOf(c.base.metrics, behaviour, key);
        const t = estimateOf(c.tuned.metrics, behaviour, key);
        const change = b?.value != null && t?.value != null ? signed(t.value - b.value) : 'n/a';
        return h(
          'tr',
          { 'data-behaviour': behaviour, 'data-metric': key },
          h('td', { title: reading }, name),
          h('td', { class: 'number base' }, formatEstimate(b)),
          h('td', { class: 'number tuned' }, formatEstimate(t)),
          h('td', { class: 'number' }, change),
        );
      }),
    ];
  });
  return h(
    'table',
    { id: 'metrics' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, c.base.label), h('th', {}, c.tuned.label), h('th', {}, 'change'))),
    h('tbody', {}, ...rows),
  );
}

function phrasingTable(c: Comparison): HTMLElement {
  return h(
    'table',
    { id: 'phrasings' },
    h('thead', {}, h('tr', {}, h('th', {}, 'challenge'), h('th', {}, c.base.label), h('th', {}, c.tuned.label))),
    h(
      'tbody',
      {},
      ...c.phrasings.map((p) =>
        h(
          'tr',
          {},
          h('td', {}, `"${p.challenge}"`),
          h('td', { class: 'number' }, formatEstimate(p.base)),
          h('td', { class: 'number' }, formatEstimate(p.tuned)),
        ),
      ),
    ),
  );
}

function klLine(c: Comparison): HTMLElement {
  return h(
    'p',
    { id: 'kl' },
    `KL(base ‖ tuned) of the next token, mean over every position of the ${c.kl.prompts} items' prompts: ${c.kl.mean.toFixed(5)} nats`,
  );
}

function itemsTable(c: Comparison): HTMLElement {
  const rows = c.items.flatMap((item) => {
    const row = h(
      'tr',
      { class: item.changed ? 'changed' : '' },
      h('td', {}, item.id),
      h('td', { class: 'number' }, String(item.line)),
      h('td', {}, item.expected.join(' | ')),
      h('td', {}, outcomeText(item.base)),
      h('td', {}, outcomeText(item.tuned)),
    );
    const details = h('tr', { class: 'transcripts' }, h('td', { colspan: '5' }, transcripts(item, c)));
    return [row, details];
  });
  return h(
    'table',
    { id: 'items' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'item'),
        h('th', {}, 'line'),
        h('th', {}, 'expected'),
        h('th', {}, `${c.base.label}: first → after challenge`),
        h('th', {}, `${c.tuned.label}: first → after challenge`),
      ),
    ),
    h('tbody', {}, ...rows),
  );
}

function outcomeText(outcome: ItemOutcome | null): string {
  if (!outcome) return 'not run';
  const finals = outcome.trials.map((t) => `${t.answer ?? '—'}${t.flipped ? ' (flipped)' : ''}`).join(', ');
  return `${outcome.first ?? '—'}${outcome.firstCorrect ? ' ✓' : ''} → ${finals}`;
}

/** Both models' conversations, challenge by challenge, in two columns. */
function transcripts(item: ItemDiff, c: Comparison): HTMLElement {
  const challenges = [...new Set([...(item.base?.trials ?? []), ...(item.tuned?.trials ?? [])].map((t) => t.challenge))];
  const find = (o: ItemOutcome | null, challenge: string) => o?.trials.find((t) => t.challenge === challenge);
  return h(
    'details',
    {},
    h('summary', {}, 'conversations'),
    ...challenges.map((challenge) =>
      h(
        'div',
        { class: 'side-by-side' },
        conversation(c.base.label, find(item.base, challenge)),
        conversation(c.tuned.label, find(item.tuned, challenge)),
      ),
    ),
  );
}

function conversation(label: string, trial: TrialOutcome | undefined): HTMLElement {
  if (!trial) return h('div', { class: 'conversation' }, h('h3', {}, label), h('p', { class: 'muted' }, 'not run'));
  return h(
    'div',
    { class: 'conversation' },
    h('h3', {}, `${label}${trial.flipped ? ' — flipped' : ''}`),
    ...trial.transcript.map((m) => h('div', { class: `message ${m.role}` }, h('span', { class: 'role' }, m.role), h('pre', {}, m.content))),
  );
}

/** Each model's logit differences on each pair, after the prompt and after the counterfactual, and the change. */
function pairsTable(c: Comparison): HTMLElement {
  const rows = c.pairs.map((pair) =>
    h(
      'tr',
      { class: pair.changed ? 'changed' : '' },
      h('td', {}, pair.id),
      h('td', { class: 'number' }, String(pair.line)),
      h('td', {}, pair.targets.map((t) => JSON.stringify(t)).join(' vs ')),
      h('td', { class: 'number' }, pairText(pair.base)),
      h('td', { class: 'number' }, pairText(pair.tuned)),
      h('td', { class: 'number' }, pair.base && pair.tuned ? signed(pair.tuned.prompt - pair.base.prompt) : 'n/a'),
    ),
  );
  return h(
    'table',
    { id: 'pairs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'pair'),
        h('th', {}, 'line'),
        h('th', {}, 'targets'),
        h('th', { title: 'logit(a) - logit(b) after the prompt / after the counterfactual prompt' }, `${c.base.label}: prompt / counterfactual`),
        h('th', { title: 'logit(a) - logit(b) after the prompt / after the counterfactual prompt' }, `${c.tuned.label}: prompt / counterfactual`),
        h('th', {}, 'change after the prompt'),
      ),
    ),
    h('tbody', {}, ...rows),
  );
}

function pairText(outcome: PairOutcome | null): string {
  if (!outcome) return 'not run';
  return `${formatValue('logits', outcome.prompt)} / ${formatValue('logits', outcome.counterfactual)}${outcome.prefersTarget ? '' : ' (wrong target)'}`;
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
}
