import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { Chart, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import { headLabel } from '../protocol/heads';
import type { TuneStep } from '../protocol/jobs';
import { appendStep, type TuningData, type TuningFromView, type TuningState, type TuningToView } from '../protocol/views';
import { h, replaceChildren } from './dom';
import { smoothed } from './smoothing';
import { onThemeChange, readTheme, withAlpha, type Theme } from './theme';
import { connect } from './vscodeApi';

/**
 * The Tuning panel: live loss and learning-rate curves of a tuning run, its step and ETA, and Stop; after a reload
 * (which ends the runner's job with the window) it shows the curves so far and Resume, which continues the run
 * from its newest checkpoint. A step updates the numbers and curves in place, so that Stop stays under the pointer.
 */

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip);

interface Curves {
  loss: Chart<'line', { x: number; y: number }[]>;
  lr: Chart<'line', { x: number; y: number }[]>;
}

/** TensorBoard's default is 0.6; tuning runs are short and their batches small, so the trend needs more. */
const LOSS_SMOOTHING = 0.8;

let data: TuningData | undefined;
let theme: Theme = readTheme();
let curves: Curves | undefined;

const vscode = connect<TuningState, TuningFromView, TuningToView>((message) => {
  switch (message.type) {
    case 'show':
      data = message.data;
      render();
      break;
    case 'step':
      if (!data) return;
      addStep(message.step);
      break;
    case 'status':
      if (!data) return;
      Object.assign(data, { status: message.status, message: message.message, checkpoint: message.checkpoint ?? data.checkpoint });
      render();
      break;
  }
  vscode.setState(data!);
});

onThemeChange(() => {
  theme = readTheme();
  render();
});

data = vscode.getState();
render();
vscode.postMessage({ type: 'ready' });

function render(): void {
  if (!data) return;
  curves?.loss.destroy();
  curves?.lr.destroy();
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  const loss = h('canvas', { id: 'loss' });
  const lr = h('canvas', { id: 'lr' });
  replaceChildren(
    document.getElementById('root')!,
    h(
      'header',
      {},
      h('h1', {}, 'Tuning ', h('vscode-badge', { id: 'status' }, data.status)),
      h('p', { class: 'muted' }, `${data.model} · heads ${data.heads.map(headLabel).join(', ')}`),
      h('p', { class: 'muted' }, data.run),
      data.message ? h('p', { class: 'note' }, data.message) : null,
    ),
    h(
      'section',
      { class: 'numbers' },
      number('step', 'step'),
      number('loss', 'loss-value'),
      number('learning rate', 'lr-value'),
      number('tokens/s', 'speed'),
      number('ETA', 'eta'),
    ),
    h('section', { class: 'actions' }, ...buttons()),
    data.checkpoint ? h('p', { class: 'muted' }, `checkpoint: ${data.checkpoint}`) : null,
    h(
      'section',
      { class: 'curves' },
      h(
        'div',
        { class: 'curve' },
        h('h2', {}, 'Loss'),
        h('p', { class: 'muted' }, `per step (faint) and its moving average (weight ${LOSS_SMOOTHING} on the past, debiased)`),
        h('div', { class: 'curve-canvas' }, loss),
      ),
      h(
        'div',
        { class: 'curve' },
        h('h2', {}, 'Learning rate'),
        h('p', { class: 'muted' }, 'per step, as the schedule sets it'),
        h('div', { class: 'curve-canvas' }, lr),
      ),
    ),
  );
  curves = {
    loss: curve(loss, [
      { colour: withAlpha(theme.accent, 0.35), width: 1 },
      { colour: theme.accent, width: 2 },
    ]),
    lr: curve(lr, [{ colour: theme.secondary, width: 2 }]),
  };
  plot();
  showNumbers();
}

function addStep(step: TuneStep): void {
  appendStep(data!.points, step);
  plot();
  showNumbers();
}

/** The loss per step, faint, under its smoothed trend; the learning rate. */
function plot(): void {
  const steps = data!.points.map((p) => p.step);
  const series = (values: number[]) => values.map((y, i) => ({ x: steps[i], y }));
  const losses = data!.points.map((p) => p.loss);
  const [raw, trend] = curves!.loss.data.datasets;
  raw.data = series(losses);
  trend.data = series(smoothed(losses, LOSS_SMOOTHING));
  curves!.lr.data.datasets[0].data = series(data!.points.map((p) => p.lr));
  curves!.loss.update('none');
  curves!.lr.update('none');
}

function showNumbers(): void {
  const last = data!.points.at(-1);
  const running = data!.status === 'running';
  const text: Record<string, string> = {
    step: `${last?.step ?? 0} / ${data!.steps}`,
    'loss-value': last ? last.loss.toFixed(4) : '—',
    'lr-value': last ? last.lr.toExponential(2) : '—',
    // NaN for the steps read back from a checkpoint, whose speed was not recorded (setState stores it as null)
    speed: last && Number.isFinite(last.tokensPerSecond) ? Math.round(last.tokensPerSecond).toString() : '—',
    eta: last && running ? duration(last.etaSeconds) : '—',
  };
  for (const [id, value] of Object.entries(text)) document.getElementById(id)!.textContent = value;
}

function number(label: string, id: string): HTMLElement {
  return h('div', { class: 'number-box' }, h('div', { class: 'muted' }, label), h('div', { class: 'big', id }, ''));
}

function buttons(): HTMLElement[] {
  if (data!.status === 'running') {
    const stop = h('vscode-button', { secondary: '' }, 'Stop');
    stop.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
    return [stop];
  }
  const shown: HTMLElement[] = [];
  if (data!.status === 'stopped' || data!.status === 'failed') shown.push(button('Resume', 'resume'));
  // a checkpoint is a tuned model: what to do next with it
  if (data!.checkpoint) shown.push(button('Compare with the base model', 'compare', shown.length > 0), button('Export…', 'export', true));
  return shown;
}

function button(label: string, type: 'resume' | 'compare' | 'export', secondary = false): HTMLElement {
  const element = h('vscode-button', secondary ? { secondary: '' } : {}, label);
  element.addEventListener('click', () => vscode.postMessage({ type }));
  return element;
}

function curve(canvas: HTMLCanvasElement, lines: { colour: string; width: number }[]): Chart<'line', { x: number; y: number }[]> {
  return new Chart(canvas, {
    type: 'line',
    data: {
      datasets: lines.map(({ colour, width }) => ({ data: [], borderColor: colour, backgroundColor: colour, borderWidth: width, pointRadius: 0 })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: {
        x: {
          type: 'linear',
          title: { display: true, text: 'step', color: theme.foreground },
          ticks: { color: theme.muted },
          grid: { color: theme.grid },
        },
        y: { ticks: { color: theme.muted }, grid: { color: theme.grid } },
      },
    },
  });
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
