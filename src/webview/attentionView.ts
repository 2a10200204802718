import type { AttentionResult } from '../protocol/jobs';
import { divergingColour } from './divergingScale';
import { h } from './dom';
import { rgb, scaleColours, type Theme } from './theme';

/**
 * A head's attention pattern on one prompt, as TransformerLens users look at it: the matrix of query rows (all T,
 * or the last ATTENTION_ROWS of a long prompt) by T key columns, drawn one pixel per weight and scaled up, and the
 * prompt's tokens shaded by one query position's weights (the last, where the model starts its reply, until
 * another row or token is clicked). Weights are probabilities, so the matrix's scale is absolute, background at 0
 * to the full colour at 1, and comparable across heads; the tokens are shaded relative to the row's largest
 * weight, which the caption gives.
 */
export function attentionView(result: AttentionResult, theme: Theme, query: number, onQuery: (q: number) => void): HTMLElement {
  const T = result.tokens.length;
  const hover = h('p', { class: 'muted attention-hover' }, 'Hover the pattern for a weight; click a row or a token to see what it attends to.');
  const shown = result.firstRow > 0 ? ` (rows of the last ${T - result.firstRow} shown)` : '';
  return h(
    'div',
    { class: 'attention' },
    h('div', { class: 'attention-matrix' }, patternCanvas(result, theme, hover, onQuery), hover),
    h(
      'div',
      { class: 'attention-tokens' },
      h(
        'p',
        { class: 'muted' },
        `What position ${query} (${show(result.tokens[query])}) attends to, relative to its largest weight ` +
          `${Math.max(...row(result, query)).toFixed(3)}; ${T} tokens${shown}.`,
      ),
      tokenStrip(result, theme, query, onQuery),
    ),
  );
}

function patternCanvas(result: AttentionResult, theme: Theme, hover: HTMLElement, onQuery: (q: number) => void): HTMLCanvasElement {
  const T = result.tokens.length;
  const rows = T - result.firstRow;
  const canvas = h('canvas', { id: 'attention-pattern', width: String(T), height: String(rows), 'aria-label': `attention pattern, ${rows} x ${T}` });
  canvas.style.aspectRatio = `${T} / ${rows}`;
  const image = new ImageData(T, rows);
  result.weights.forEach((weight, i) => image.data.set([...shade(weight, 1, theme), 255], 4 * i));
  canvas.getContext('2d')!.putImageData(image, 0, 0);
  const cell = (event: MouseEvent) => {
    const box = canvas.getBoundingClientRect();
    const clamp = (x: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(x)));
    return {
      q: result.firstRow + clamp(((event.clientY - box.top) / box.height) * rows, rows),
      k: clamp(((event.clientX - box.left) / box.width) * T, T),
    };
  };
  canvas.addEventListener('mousemove', (event) => {
    const { q, k } = cell(event);
    hover.textContent = `query ${q} ${show(result.tokens[q])} → key ${k} ${show(result.tokens[k])}: ${row(result, q)[k].toFixed(4)}`;
  });
  canvas.addEventListener('click', (event) => onQuery(cell(event).q));
  return canvas;
}

function tokenStrip(result: AttentionResult, theme: Theme, query: number, onQuery: (q: number) => void): HTMLElement {
  const weights = row(result, query);
  const max = Math.max(...weights);
  const tokens = result.tokens.map((token, k) => {
    const span = h(
      'span',
      { class: k === query ? 'token query' : 'token', 'data-weight': String(weights[k]), title: `${k} ${show(token)}: ${weights[k].toFixed(4)}` },
      token.replace(/\n/g, '↵'),
    );
    span.style.background = rgb(shade(weights[k], max, theme));
    // only positions with a row of weights can be the query
    if (k >= result.firstRow) span.addEventListener('click', () => onQuery(k));
    return span;
  });
  return h('div', { class: 'tokens', id: 'attention-tokens' }, ...tokens);
}

function shade(weight: number, max: number, theme: Theme) {
  return divergingColour(weight, max, scaleColours(theme));
}

/** Query position q's weights over every key. */
function row(result: AttentionResult, q: number): number[] {
  const T = result.tokens.length;
  return result.weights.slice((q - result.firstRow) * T, (q - result.firstRow + 1) * T);
}

function show(token: string): string {
  return JSON.stringify(token);
}
