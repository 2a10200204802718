import type { Rgb } from './theme';

/**
 * A diverging colour scale centred on zero: zero is the background, the most negative value of the map the full
 * negative colour and the most positive (in magnitude) the full positive colour, so the sign reads as hue and the
 * size as strength, and a map of small effects does not look like one of large ones only when scaled alike.
 */
export function divergingColour(value: number, maxAbs: number, colours: { negative: Rgb; zero: Rgb; positive: Rgb }): Rgb {
  if (!(maxAbs > 0) || !Number.isFinite(value)) return colours.zero;
  const t = Math.min(1, Math.abs(value) / maxAbs);
  const end = value < 0 ? colours.negative : colours.positive;
  return colours.zero.map((z, i) => z + (end[i] - z) * t) as Rgb;
}

export function maxAbs(values: number[][]): number {
  return values.flat().reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
}
