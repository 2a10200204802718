/**
 * The editor theme's colours, read from the --vscode-* variables VS Code sets on the page, so that canvas drawings
 * (which CSS does not reach) follow the theme; `onThemeChange` tells when VS Code swapped them.
 */

export type Rgb = [number, number, number];

export interface Theme {
  foreground: string;
  muted: string;
  background: Rgb;
  grid: string;
  negative: Rgb;
  positive: Rgb;
  accent: string;
  secondary: string;
  font: string;
}

export function readTheme(): Theme {
  const style = getComputedStyle(document.documentElement);
  const variable = (name: string) => style.getPropertyValue(`--vscode-${name}`).trim();
  return {
    foreground: variable('foreground'),
    muted: variable('descriptionForeground'),
    background: toRgb(variable('editor-background')),
    grid: variable('editorWidget-border') || variable('panel-border'),
    negative: toRgb(variable('charts-blue')),
    positive: toRgb(variable('charts-red')),
    accent: variable('charts-blue'),
    secondary: variable('charts-orange'),
    font: variable('font-family'),
  };
}

/** VS Code changes the body's class (vscode-light, vscode-dark, …) and the variables together. */
export function onThemeChange(callback: () => void): void {
  new MutationObserver(callback).observe(document.body, { attributes: true, attributeFilter: ['class'] });
}

let probe: CanvasRenderingContext2D | undefined;

/** Any CSS colour as RGB: the canvas normalises what it is given to #rrggbb or rgba(). */
function toRgb(css: string): Rgb {
  probe ??= document.createElement('canvas').getContext('2d')!;
  probe.fillStyle = '#000000';
  probe.fillStyle = css;
  const normal = probe.fillStyle;
  if (normal.startsWith('#')) return [1, 3, 5].map((i) => parseInt(normal.slice(i, i + 2), 16)) as Rgb;
  const [r, g, b] = normal
    .replace(/[^\d.,]/g, '')
    .split(',')
    .map(Number);
  return [r, g, b];
}

/** The diverging scale's colours in this theme: zero is the editor background. */
export function scaleColours(theme: Theme): { negative: Rgb; zero: Rgb; positive: Rgb } {
  return { negative: theme.negative, zero: theme.background, positive: theme.positive };
}

/** A theme colour made translucent, for what sits under the main line of a chart. */
export function withAlpha(css: string, alpha: number): string {
  const [r, g, b] = toRgb(css);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

export function rgb([r, g, b]: Rgb): string {
  return `rgb(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)})`;
}
