import type { HeadScore } from '../../../src/protocol/heads';

/** Every head, largest |score| first (ties in layer, head order). */
export function rankHeads(scores: number[][]): HeadScore[] {
  const all = scores.flatMap((row, layer) => row.map((score, head) => ({ layer, head, score })));
  return all.sort((a, b) => Math.abs(b.score) - Math.abs(a.score) || a.layer - b.layer || a.head - b.head);
}

/** The paper tunes about 4% of all heads. */
export function defaultTopK(layers: number, heads: number): number {
  return Math.max(1, Math.round(0.04 * layers * heads));
}

/** Spearman's rank correlation of two equally long lists (average ranks for ties). */
export function spearman(a: number[], b: number[]): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const [ma, mb] = [mean(ra), mean(rb)];
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

function ranks(xs: number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}
