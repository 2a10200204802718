import type { AttentionResult } from '../protocol/jobs';
import { divergingColour } from './divergingScale';
import { h } from './dom';
import { rgb, type Theme } from './theme';

/**
 * A head's attention pattern on one prompt, as TransformerLens users look at it: the T x T matrix (query rows, key
 * columns) drawn one pixel per weight and scaled up, and the prompt's tokens shaded by one query position's weights
 * (the last, where the model starts its reply, until another row or token is clicked). Weights are probabilities,
 * so the matrix's scale is absolute, background at 0 to the full colour at 1, and comparable across heads; the
 * tokens are shaded relative to the row's largest weight, which the caption gives.
 */
export function attentionView(result: AttentionResult, theme: Theme, query: number, onQuery: (q: number) => void): HTMLElement {
  const T = result.tokens.length;
  const hover = h('p', { class: 'muted attention-hover' }, 'Hover the pattern for a weight; click a row or a token to see what it attends to.');
  return h('div', { class: 'attention' },
    h('div', { class: 'attention-matrix' }, patternCanvas(result, theme, hover, onQuery), hover),
    h('div', { class: 'attention-tokens' },
      h('p', { class: 'muted' }, `What position ${query} (${show(result.tokens[query])}) attends to, relative to its largest weight `
        + `${rowMax(result, query).toFixed(3)}; ${T} tokens.`),
      tokenStrip(result, theme, query, onQuery)));
}

function patternCanvas(result: AttentionResult, theme: Theme, hover: HTMLElement, onQuery: (q: number) => void): HTMLCanvasElement {
  const T = result.tokens.length;
  const canvas = h('canvas', { id: 'attention-pattern', width: String(T), height: String(T), 'aria-label': `attention pattern, ${T} x ${T}` });
  const image = new ImageData(T, T);
  for (let i = 0; i < T * T; i++) {
    const [r, g, b] = shade(result.weights[i], 1, theme);
    image.data.set([r, g, b, 255], 4 * i);
  }
  canvas.getContext('2d')!.putImageData(image, 0, 0);
  const cell = (event: MouseEvent) => {
    const box = canvas.getBoundingClientRect();
    const clamp = (x: number) => Math.min(T - 1, Math.max(0, Math.floor(x)));
    return { q: clamp(((event.clientY - box.top) / box.height) * T), k: clamp(((event.clientX - box.left) / box.width) * T) };
  };
  canvas.addEventListener('mousemove', (event) => {
    const { q, k } = cell(event);
    hover.textContent = `query ${q} ${show(result.tokens[q])} → key ${k} ${show(result.tokens[k])}: ${result.weights[q * T + k].toFixed(4)}`;
  });
  canvas.addEventListener('click', (event) => onQuery(cell(event).q));
  return canvas;
}

function tokenStrip(result: AttentionResult, theme: Theme, query: number, onQuery: (q: number) => void): HTMLElement {
  const T = result.tokens.length;
  const max = rowMax(result, query);
  const tokens = result.tokens.map((token, k) => {
    const weight = result.weights[query * T + k];
    const span = h('span', { class: k === query ? 'token query' : 'token', 'data-weight': String(weight), title: `${k} ${show(token)}: ${weight.toFixed(4)}` },
      token.replace(/\n/g, '↵'));
    span.style.background = rgb(shade(weight, max, theme));
    span.addEventListener('click', () => onQuery(k));
    return span;
  });
  return h('div', { class: 'tokens', id: 'attention-tokens' }, ...tokens);
}

function shade(weight: number, max: number, theme: Theme) {
  return divergingColour(weight, max, { negative: theme.negative, zero: theme.background, positive: theme.positive });
}

function rowMax(result: AttentionResult, query: number): number {
  const T = result.tokens.length;
  return Math.max(...result.weights.slice(query * T, (query + 1) * T));
}

function show(token: string): string {
  return JSON.stringify(token);
}
