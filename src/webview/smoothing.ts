/**
 * TensorBoard's loss smoothing: an exponential moving average with weight `weight` on the past, debiased (divided
 * by 1 - weight^n) so that the first points are not pulled towards zero. Noisy per-batch losses read as a trend.
 */
export function smoothed(values: readonly number[], weight: number): number[] {
  let average = 0;
  return values.map((value, i) => {
    average = weight * average + (1 - weight) * value;
    return average / (1 - weight ** (i + 1));
  });
}
