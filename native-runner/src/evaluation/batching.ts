/**
 * Row-wise work run in batches of at most `size` rows, results in the order of the rows. Rows are batched in order
 * of length, longest first, so that each batch pads its rows to similar lengths and wastes little compute on
 * padding; results do not depend on which rows share a batch.
 */
export async function inBatches<T, R>(rows: T[], size: number, length: (row: T) => number, run: (batch: T[]) => Promise<R[]>): Promise<R[]> {
  const order = rows.map((_, i) => i).sort((a, b) => length(rows[b]) - length(rows[a]) || a - b);
  const results: R[] = new Array(rows.length);
  for (let start = 0; start < order.length; start += size) {
    const batch = order.slice(start, start + size);
    const out = await run(batch.map((i) => rows[i]));
    batch.forEach((i, j) => {
      results[i] = out[j];
    });
  }
  return results;
}
