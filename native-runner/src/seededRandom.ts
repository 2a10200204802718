/**
 * Seeded randomness, identical on every machine and run: initial weights, data order, bootstrap resamples and
 * random head choices must all be reproducible from a seed.
 */

/** Uniform samples in (0, 1) from mulberry32. */
export function uniformSampler(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller over uniformSampler). */
export function normalSampler(seed: number): () => number {
  const uniform = uniformSampler(seed);
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** A permutation of 0..n-1 (Fisher-Yates). */
export function shuffled(n: number, seed: number): number[] {
  const uniform = uniformSampler(seed);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
