import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip, type ChartEvent, type TooltipItem } from 'chart.js';
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix';
import { headLabel, sameHead, type HeadRef, type HeadsFile, type PairSide } from '../protocol/heads';
import type { AttentionResult } from '../protocol/jobs';
import type { AttentionQuery, HeadMapData, HeadMapFromView, HeadMapState, HeadMapToView } from '../protocol/views';
import { attentionView } from './attentionView';
import { divergingColour, maxAbs } from './divergingScale';
import { describePair, headsTerms, knockoutTable, pairSides } from './headMapText';
import { h, replaceChildren } from './dom';
import { onThemeChange, readTheme, rgb, scaleColours, type Theme } from './theme';
import { connect } from './vscodeApi';

/**
 * The Head Map: the layer x head heatmap of the localisation score (heads.json), the ranking with the heads
 * selected for tuning, the per-item effects and the attention pattern of the head clicked, and the knockout check
 * of the selection, each in the terms of the behaviour the heads were located on.
 */

Chart.register(MatrixController, MatrixElement, BarController, BarElement, LinearScale, CategoryScale, Tooltip);

interface Cell {
  x: number;
  y: number;
  v: number;
}

const TOP_HEADS = 10;

/** The attention pattern asked for last, and what came of it. */
interface Pattern {
  query: AttentionQuery;
  result?: AttentionResult;
  error?: string;
  /** the query position whose weights shade the tokens */
  row?: number;
}

let data: HeadMapData | undefined;
let focus: HeadRef | undefined;
let pattern: Pattern | undefined;
let theme: Theme = readTheme();
let map: Chart<'matrix', Cell[]> | undefined;
let effects: Chart<'bar'> | undefined;

const vscode = connect<HeadMapState, HeadMapFromView, HeadMapToView>((message) => {
  switch (message.type) {
    case 'show':
      return show(message.data);
    case 'attention':
    case 'attentionFailed':
      if (pattern && sameQuery(pattern.query, message.query)) {
        pattern = message.type === 'attention' ? { query: message.query, result: message.result } : { query: message.query, error: message.message };
        render();
      }
  }
});

function show(shown: HeadMapData): void {
  data = shown;
  const state = vscode.getState();
  // a restored panel keeps the user's selection, focus and attention choice over what the file proposes
  if (state?.file === data.file) {
    data.selected = state.selected;
    focus = state.focus;
    const query = focus && state.attention && { ...focus, ...state.attention };
    // a page that already shows this pattern (the data was only updated, e.g. by a knockout) keeps it
    if (query && !(pattern && sameQuery(pattern.query, query))) return askAttention(query);
  }
  render();
}

onThemeChange(() => {
  theme = readTheme();
  render();
});

vscode.postMessage({ type: 'ready' });

function render(): void {
  if (!data) return;
  const { heads } = data;
  const root = document.getElementById('root')!;
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  map?.destroy();
  effects?.destroy();
  const mapCanvas = h('canvas', { id: 'head-map', 'aria-label': `Localisation score of ${heads.layers} x ${heads.heads} heads` });
  const effectsCanvas = h('canvas', { id: 'item-effects' });
  replaceChildren(
    root,
    h(
      'header',
      {},
      h('h1', {}, `Head Map · ${headsTerms(heads).name}`),
      h('p', { class: 'muted' }, describeRun(heads)),
      h('p', { class: 'muted', id: 'pair' }, describePair(heads)),
      ...heads.notes.map((note) => h('p', { class: 'note' }, note)),
    ),
    h(
      'section',
      { class: 'columns' },
      h(
        'div',
        { class: 'map' },
        h('div', { class: 'map-canvas' }, mapCanvas),
        legend(heads),
        h('div', { class: 'focus' }, focusHeader(heads), h('div', { class: 'effects-canvas' }, effectsCanvas), attention(heads)),
      ),
      h('div', { class: 'side' }, topHeads(heads), actions(), knockout()),
    ),
  );
  map = drawMap(mapCanvas, heads);
  effects = drawEffects(effectsCanvas, heads);
  saveState();
}

function describeRun(heads: HeadsFile): string {
  const model = heads.model.dir.split(/[\\/]/).filter(Boolean).pop();
  return (
    `${model} · ${heads.layers} layers x ${heads.heads} heads · ${heads.method} patching, ${heads.metric} · ` +
    `${heads.items.length} items${heads.skipped.length ? ` (${heads.skipped.length} skipped)` : ''} · ${heads.provider.toUpperCase()} · ${heads.seconds.toFixed(1)} s`
  );
}

function drawMap(canvas: HTMLCanvasElement, heads: HeadsFile): Chart<'matrix', Cell[]> {
  const cells = heads.scores.flatMap((row, layer) => row.map((v, head) => ({ x: head, y: layer, v })));
  const scale = maxAbs(heads.scores);
  const colours = scaleColours(theme);
  const isSelected = (c: Cell) => data!.selected.some((s) => sameHead(s, { layer: c.y, head: c.x }));
  const isFocus = (c: Cell) => focus?.layer === c.y && focus.head === c.x;
  return new Chart(canvas, {
    type: 'matrix',
    data: {
      datasets: [
        {
          data: cells,
          backgroundColor: (ctx) => rgb(divergingColour((ctx.raw as Cell).v, scale, colours)),
          borderColor: (ctx) => (isFocus(ctx.raw as Cell) ? theme.secondary : isSelected(ctx.raw as Cell) ? theme.foreground : 'transparent'),
          borderWidth: (ctx) => (isFocus(ctx.raw as Cell) || isSelected(ctx.raw as Cell) ? 2 : 0),
          width: ({ chart }) => Math.max(1, (chart.chartArea?.width ?? 0) / heads.heads - 2),
          height: ({ chart }) => Math.max(1, (chart.chartArea?.height ?? 0) / heads.layers - 2),
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      onClick: (_event: ChartEvent, elements) => {
        const hit = elements[0];
        if (!hit) return;
        const cell = cells[hit.index];
        focusOn({ layer: cell.y, head: cell.x });
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items: TooltipItem<'matrix'>[]) => headLabel({ layer: (items[0].raw as Cell).y, head: (items[0].raw as Cell).x }),
            label: (item: TooltipItem<'matrix'>) => {
              const c = item.raw as Cell;
              return [`score ${c.v.toFixed(4)}`, `effect ${heads.effects[c.y][c.x].toFixed(4)}`];
            },
          },
        },
      },
      scales: {
        x: axis('head', heads.heads - 1, false),
        y: axis('layer', heads.layers - 1, true),
      },
    },
  });
}

function axis(title: string, max: number, reverse: boolean) {
  return {
    type: 'linear' as const,
    offset: true,
    min: 0,
    max,
    reverse,
    ticks: { stepSize: 1, color: theme.muted },
    grid: { display: false },
    title: { display: true, text: title, color: theme.foreground },
  };
}

/** The colours of the scale, from the most negative score's magnitude to the same positive. */
function legend(heads: HeadsFile): HTMLElement {
  const scale = maxAbs(heads.scores);
  const canvas = h('canvas', { class: 'legend-bar', width: '200', height: '10' });
  const ctx = canvas.getContext('2d')!;
  const colours = scaleColours(theme);
  for (let x = 0; x < 200; x++) {
    ctx.fillStyle = rgb(divergingColour(((x - 99.5) / 99.5) * scale, scale, colours));
    ctx.fillRect(x, 0, 1, 10);
  }
  return h(
    'div',
    { class: 'legend' },
    h('span', {}, (-scale).toFixed(3)),
    canvas,
    h('span', {}, `+${scale.toFixed(3)}`),
    h('span', { class: 'muted' }, ' relative change of the metric when the head is patched'),
  );
}

function topHeads(heads: HeadsFile): HTMLElement {
  const shown = heads.ranking.slice(0, Math.max(TOP_HEADS, heads.topK));
  const rows = shown.map((entry, rank) => {
    const box = h('vscode-checkbox', { 'aria-label': `select ${headLabel(entry)}` });
    box.checked = data!.selected.some((s) => sameHead(s, entry));
    box.addEventListener('change', () => toggle(entry, box.checked));
    const name = h('a', { href: '#', class: 'head-link' }, headLabel(entry));
    name.addEventListener('click', (event) => {
      event.preventDefault();
      focusOn(entry);
    });
    return h('tr', {}, h('td', {}, box), h('td', {}, String(rank + 1)), h('td', {}, name), h('td', { class: 'number' }, entry.score.toFixed(4)));
  });
  return h(
    'div',
    { class: 'top-heads' },
    h('h2', {}, `Top heads (${data!.selected.length} selected of ${heads.layers * heads.heads})`),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, '#'), h('th', {}, 'head'), h('th', {}, 'score'))),
      h('tbody', {}, ...rows),
    ),
  );
}

function actions(): HTMLElement {
  const heads = data!.selected;
  const tune = h('vscode-button', {}, `Tune these heads (${heads.length})`);
  const check = h('vscode-button', { secondary: '' }, 'Validate by knockout');
  for (const button of [tune, check]) if (heads.length === 0) button.setAttribute('disabled', '');
  tune.addEventListener('click', () => vscode.postMessage({ type: 'tune', heads }));
  check.addEventListener('click', () => vscode.postMessage({ type: 'knockout', heads }));
  return h('div', { class: 'actions' }, tune, check);
}

/** The knockout check: the behaviour's metrics intact, with the heads knocked out two ways, and with random heads. */
function knockout(): HTMLElement | null {
  const k = data!.knockout;
  if (!k) return null;
  const { columns, rows } = knockoutTable(data!.heads, k);
  return h(
    'div',
    { class: 'knockout' },
    h('h2', {}, `Knockout of ${k.heads.map(headLabel).join(', ')}`),
    h(
      'table',
      { id: 'knockout' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), ...columns.map((c) => h('th', { title: c.reading }, c.name)))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, h('td', {}, r.label), ...r.cells.map((cell) => h('td', { class: 'number' }, cell))))),
    ),
  );
}

function focusHeader(heads: HeadsFile): HTMLElement {
  if (!focus) return h('p', { class: 'muted' }, 'Click a head to see its effect on each item and its attention pattern.');
  const head = focus;
  const box = h('vscode-checkbox', {}, 'selected for tuning');
  box.checked = data!.selected.some((s) => sameHead(s, head));
  box.addEventListener('change', () => toggle(head, box.checked));
  return h(
    'div',
    { class: 'focus-header' },
    h('h2', {}, `${headLabel(head)}: score ${heads.scores[head.layer][head.head].toFixed(4)}, per item`),
    box,
  );
}

function drawEffects(canvas: HTMLCanvasElement, heads: HeadsFile): Chart<'bar'> | undefined {
  if (!focus) return undefined;
  const { layer, head } = focus;
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels: heads.items.map((item) => item.id),
      datasets: [
        {
          data: heads.items.map((item) => item.scores[layer][head]),
          backgroundColor: heads.items.map((item) => rgb(item.scores[layer][head] < 0 ? theme.negative : theme.positive)),
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      // a bar clicked shows the head's attention on that item
      onClick: (_event: ChartEvent, elements) => {
        const hit = elements[0];
        if (hit && pattern) askAttention({ ...pattern.query, item: heads.items[hit.index].id });
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            afterLabel: (item: TooltipItem<'bar'>) => {
              const targets = heads.items[item.dataIndex].targets;
              return targets ? `targets ${targets.map((t) => JSON.stringify(t)).join(' vs ')}` : '';
            },
          },
        },
      },
      scales: {
        x: { ticks: { color: theme.muted }, grid: { display: false } },
        y: { ticks: { color: theme.muted }, grid: { color: theme.grid }, title: { display: true, text: 'relative change', color: theme.foreground } },
      },
    },
  });
}

function toggle(head: HeadRef, selected: boolean): void {
  const rest = data!.selected.filter((s) => !sameHead(s, head));
  data!.selected = selected ? [...rest, { layer: head.layer, head: head.head }] : rest;
  vscode.postMessage({ type: 'select', heads: data!.selected });
  render();
}

function focusOn(head: HeadRef): void {
  focus = { layer: head.layer, head: head.head };
  const item = pattern?.query.item ?? mostAffectedItem(data!.heads, focus);
  if (item === undefined) return render();
  askAttention({ ...focus, item, side: pattern?.query.side ?? 'reference' });
}

/** The item on which patching the head moved the metric most: where its attention is most worth a look. */
function mostAffectedItem(heads: HeadsFile, head: HeadRef): string | undefined {
  const score = (i: number) => Math.abs(heads.items[i].scores[head.layer][head.head]);
  const best = heads.items.reduce((b, _, i) => (score(i) > score(b) ? i : b), 0);
  return heads.items[best]?.id;
}

function askAttention(query: AttentionQuery): void {
  pattern = { query };
  if (data?.data) vscode.postMessage({ type: 'attention', query });
  render();
}

function sameQuery(a: AttentionQuery, b: AttentionQuery): boolean {
  return sameHead(a, b) && a.item === b.item && a.side === b.side;
}

/** The focused head's attention pattern on a chosen item, on the reference prompt or the counterfactual. */
function attention(heads: HeadsFile): HTMLElement | null {
  const sides = pairSides(heads);
  if (!focus || !pattern || !sides) return null;
  if (!data!.data)
    return h(
      'p',
      { class: 'muted' },
      'Attention patterns need the evaluation file these heads were located on; locate them again in this workspace.',
    );
  const { query } = pattern;
  const item = h(
    'vscode-single-select',
    { id: 'attention-item', 'aria-label': 'item' },
    ...heads.items.map(({ id }) => h('vscode-option', id === query.item ? { value: id, selected: '' } : { value: id }, id)),
  );
  item.addEventListener('change', () => askAttention({ ...query, item: (item as unknown as { value: string }).value }));
  const side = h(
    'vscode-single-select',
    { id: 'attention-follow-up', 'aria-label': 'prompt' },
    ...sides.map(([value, text]) => h('vscode-option', value === query.side ? { value, selected: '' } : { value }, text)),
  );
  side.addEventListener('change', () => askAttention({ ...query, side: (side as unknown as { value: PairSide }).value }));
  return h(
    'div',
    { class: 'attention-section' },
    h('h2', {}, `${headLabel(query)}: attention`),
    h('div', { class: 'attention-controls' }, item, side),
    patternBody(),
  );
}

function patternBody(): HTMLElement {
  const { result, error } = pattern!;
  if (error) return h('p', { class: 'note' }, error);
  if (!result) return h('p', { class: 'muted' }, 'Running the model…');
  const row = pattern!.row ?? result.tokens.length - 1;
  return attentionView(result, theme, row, (q) => {
    pattern!.row = q;
    render();
  });
}

function saveState(): void {
  const attention = pattern && { item: pattern.query.item, side: pattern.query.side };
  vscode.setState({ file: data!.file, selected: data!.selected, focus, attention });
}
