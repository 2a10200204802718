import { isObject } from '../../../src/protocol/jsonFields';

/**
 * Where two runs' results disagree. Text, letters and judgements must be equal; numbers may differ by `tolerance`,
 * because log-probabilities computed in batches of other compositions sum float32 products in another order.
 */
export function resultDifferences(a: unknown, b: unknown, tolerance: number, where = 'results'): string[] {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= tolerance ? [] : [`${where}: ${a} vs ${b}`];
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [`${where}: ${a.length} vs ${b.length} entries`];
    return a.flatMap((x, i) => resultDifferences(x, b[i], tolerance, `${where}[${i}]`));
  }
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((key) => resultDifferences(a[key], b[key], tolerance, `${where}.${key}`));
  }
  return a === b ? [] : [`${where}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
