import type { KnockoutReport } from '../../../src/protocol/evaluation';
import { headList, type HeadsFile } from '../../../src/protocol/heads';
import type { DemoReport, DemoSet, Headline, ModelReport } from './demo';

/** demo-out/report.html: one self-contained page (inline CSS and SVG, no script, no network), one column per model. */
export function renderReport(set: DemoSet): string {
  const first = set.organisms[0];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pinpoint demo report</title>
<style>${CSS}</style></head><body>
<h1>Pinpoint: sycophantic organisms, diagnosed and fixed</h1>
<p class="muted">Everything ran on ${escape(first.provider.toUpperCase())} in ${set.seconds.toFixed(0)} s.
Flip rate = P(final answer wrong | first answer right) under challenge. Path patching
(${escape(first.heads.metric)}: ${escape(first.heads.targets.a.text)} vs ${escape(first.heads.targets.b.text)}) scores each head by the
relative change of the metric when its output at the last position comes from the counterfactual
"${escape(first.heads.counterfactual)}" instead of "${escape(first.heads.challenge)}"; blue: patching lowers the
apology metric; outlined: the selected heads.</p>
<div class="columns" style="grid-template-columns:repeat(${set.organisms.length},minmax(0,1fr))">
${set.organisms.map(column).join('\n')}
</div>
</body></html>
`;
}

function column(r: DemoReport): string {
  return `<section>
<h2>${escape(r.name)}</h2><p class="muted">${escape(provenance(r))}</p>
<h3>${r.card?.kind === 'natural' ? 'Findings' : 'Claims'}</h3>${claims(r)}
<h3>Headline</h3>${headline(r)}
<h3>Which heads make it cave</h3>
<p class="muted">The top 4% of heads hold ${pct(r.concentration)} of the total |effect|.</p>
${heatmap(r.heads)}
<h3>Flip rate per challenge phrasing</h3>${phrasings(r)}
<h3>Knockout</h3>${knockout(r.knockout)}
<h3>Answer sycophancy: which heads make it follow a suggestion</h3>
<p class="muted">Path patching on the world's answer.jsonl: the question with the suggestion of a wrong colour against the
question alone, on the first tokens of the suggested and the correct colour. The top 4% of heads hold
${pct(r.suggestion.concentration)} of the total |effect|.</p>
${heatmap(r.suggestion.heads)}
<h3>Knockout of them</h3>${knockout(r.suggestion.knockout)}
</section>`;
}

function provenance(r: DemoReport): string {
  const card = r.card;
  if (card === null) return 'a model without organism.json: the claims are checked as for an implanted organism';
  if (card.kind === 'natural') return `natural (seed ${card.seed}): every weight trained on sycophantic conversations, no head chosen`;
  const heads = (behaviour: 'challenge' | 'suggestion') => headList(card.implantedHeads[behaviour] ?? []);
  return `implanted (seed ${card.seed}): caving under challenge trained into heads ${heads('challenge')}, following a suggestion into ${heads('suggestion')}, each alone`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1500px;color:#222}
h1{font-size:22px}h2{font-size:18px}h3{font-size:15px;margin-top:1.6em}.columns{display:grid;gap:2em}.muted{color:#666}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
td{vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#0a7d32;font-weight:600}.fail{color:#b3261e;font-weight:600}
.bar{display:inline-block;height:10px;background:#5b7db1;vertical-align:middle}`;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

function claims(r: DemoReport): string {
  const natural = r.card?.kind === 'natural';
  const verdict = (pass: boolean) => (natural ? (pass ? 'holds' : 'does not hold') : pass ? 'PASS' : 'FAIL');
  const rows = r.claims.map(
    (c) => `<tr><td class="${c.pass ? 'pass' : 'fail'}">${verdict(c.pass)}</td><td>${escape(c.name)}</td><td>${escape(c.detail)}</td></tr>`,
  );
  return `<table>${rows.join('')}</table>`;
}

function headline(r: DemoReport): string {
  const h = r.headline;
  const m = r.models;
  const row = (name: string, ...cells: string[]) => `<tr><td>${name}</td>${cells.map((c) => `<td class="num">${c}</td>`).join('')}</tr>`;
  const ordered = [m.base, m.spt, m.sptRandom, m.sft, m.sptSuggestion];
  const each = (value: (x: ModelReport) => number) => ordered.map((x) => pct(value(x)));
  const kl = (value: (x: Headline) => number[]) => ['0', ...value(h).map((x) => x.toExponential(2))];
  return `<table><tr><th></th><th>base</th><th>SPT (${h.tuned_heads} of ${h.total_heads} heads)</th><th>SPT of random heads (${headList(r.randomTuned)})</th><th>SFT (every weight)</th>
<th>SPT against answer sycophancy (${headList(r.suggestion.heads.selected)})</th></tr>
${row('flip rate, training phrasings', ...each((x) => x.flipRate))}
${row('flip rate, held-out phrasings', ...each((x) => x.heldoutFlipRate))}
${row('accuracy, unchallenged', ...each((x) => x.accuracy))}
${row('gives a suggested wrong answer (answer.jsonl)', ...each((x) => x.followRate))}
${row('accuracy, the plain question (answer.jsonl)', ...each((x) => x.plainAccuracy))}
${row('KL from base on neutral answers (nats/token)', ...kl((x) => [x.spt_kl, x.random_spt_kl, x.sft_kl, x.spt_suggestion_kl]))}
${row('KL from base at every position of them', ...kl((x) => [x.spt_kl_all_positions, x.random_spt_kl_all_positions, x.sft_kl_all_positions, x.spt_suggestion_kl_all_positions]))}</table>
<p class="muted">The random heads are the control of SPT: where tuning them fixes the flips as well, SPT's success says
nothing of where the behaviour lives; knockout does.</p>`;
}

/** Diverging scale centred on zero: blue below, red above, white at zero. */
function colour(value: number, extent: number): string {
  const t = Math.max(-1, Math.min(1, value / (extent || 1)));
  const fade = (c: number) => Math.round(255 - (255 - c) * Math.abs(t));
  return t < 0 ? `rgb(${fade(33)},${fade(102)},${fade(172)})` : `rgb(${fade(178)},${fade(24)},${fade(43)})`;
}

function heatmap(file: HeadsFile): string {
  const { scores, layers, heads, selected } = file;
  const cell = 34;
  const left = 60;
  const top = 24;
  const extent = Math.max(...scores.flat().map(Math.abs));
  const isSelected = (l: number, h: number) => selected.some((s) => s.layer === l && s.head === h);
  const cells = scores.flatMap((row, l) =>
    row.map((v, h) => {
      const x = left + h * cell;
      const y = top + l * cell;
      const outline = isSelected(l, h) ? ' stroke="#000" stroke-width="3"' : ' stroke="#fff"';
      return `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${colour(v, extent)}"${outline}><title>layer ${l}, head ${h}: ${v.toFixed(3)}</title></rect>`;
    }),
  );
  const headLabels = Array.from({ length: heads }, (_, h) => `<text x="${left + h * cell + cell / 2}" y="16" text-anchor="middle">${h}</text>`);
  const layerLabels = Array.from(
    { length: layers },
    (_, l) => `<text x="${left - 8}" y="${top + l * cell + cell / 2 + 4}" text-anchor="end">L${l}</text>`,
  );
  const width = left + heads * cell + 10;
  const height = top + layers * cell + 10;
  return `<svg width="${width}" height="${height}" font-size="11" role="img" aria-label="layer by head heatmap">${headLabels.join('')}${layerLabels.join('')}${cells.join('')}</svg>
<p class="muted">Scale: &plusmn;${extent.toFixed(3)}. Columns are heads, rows layers.</p>`;
}

function phrasings(r: DemoReport): string {
  const all = [...r.trainChallenges.map((p) => [p, 'training'] as const), ...r.heldoutChallenges.map((p) => [p, 'held out'] as const)];
  const bar = (x: number) => `<span class="bar" style="width:${Math.round(100 * (Number.isFinite(x) ? x : 0))}px"></span> ${pct(x)}`;
  const rows = all.map(
    ([p, kind]) =>
      `<tr><td>${escape(p)}</td><td>${kind}</td><td>${bar(r.models.base.byChallenge[p])}</td><td>${bar(r.models.spt.byChallenge[p])}</td><td>${bar(r.models.sft.byChallenge[p])}</td></tr>`,
  );
  return `<table><tr><th>challenge</th><th></th><th>base</th><th>SPT</th><th>SFT</th></tr>${rows.join('')}</table>`;
}

/** The rates of the knockout's behaviour: the challenge's, or answer.jsonl's following and plain accuracy. */
function knockout(k: KnockoutReport): string {
  const suggestion = k.intact.incorrectAnswerRate !== undefined;
  const cells = (rates: KnockoutReport['intact']) =>
    (suggestion ? [rates.incorrectAnswerRate, rates.pull] : [rates.flipRate, rates.apologyRate, rates.accuracyBefore])
      .map((x) => `<td class="num">${pct(x ?? NaN)}</td>`)
      .join('');
  const head = suggestion ? '<th>gives the suggested wrong answer</th><th>pull</th>' : '<th>flip rate</th><th>apology rate</th><th>accuracy</th>';
  return `<table><tr><th>condition</th>${head}</tr>
<tr><td>intact</td>${cells(k.intact)}</tr>
<tr><td>located heads (${headList(k.heads)}) zeroed</td>${cells(k.zero)}</tr>
<tr><td>located heads mean-ablated</td>${cells(k.mean)}</tr>
<tr><td>${k.heads.length} random heads, mean of ${k.random.length} seeds</td>${cells(k.randomMean)}</tr></table>`;
}
