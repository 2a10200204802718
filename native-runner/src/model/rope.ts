import type { RopeConfig } from '../checkpoint/config';

/**
 * RoPE inverse frequencies [headDim / 2], computed as transformers computes them in float32
 * (`_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`, `_compute_llama3_parameters`):
 * every step is rounded to float32 so that the angles, and hence the logits, agree to the last bits.
 */
export function inverseFrequencies(rope: RopeConfig, headDim: number): Float32Array {
  const f = Math.fround;
  const base = f(rope.theta);
  const invFreq = new Float32Array(headDim / 2);
  for (let i = 0; i < invFreq.length; i++) {
    const exponent = f(f(2 * i) / headDim);
    invFreq[i] = f(1 / f(Math.pow(base, exponent)));
  }
  switch (rope.type) {
    case 'default':
      return invFreq;
    case 'linear':
      return invFreq.map((x) => f(x / f(rope.factor!)));
    case 'llama3':
      return llama3Scaling(invFreq, rope);
  }
}

/** Llama 3.1's frequency-dependent scaling: long wavelengths divided by `factor`, short ones kept, a smooth blend between. */
function llama3Scaling(invFreq: Float32Array, rope: RopeConfig): Float32Array {
  const f = Math.fround;
  const factor = f(rope.factor!);
  const low = rope.lowFreqFactor!;
  const high = rope.highFreqFactor!;
  const oldContext = rope.originalMaxPositionEmbeddings!;
  const lowFreqWavelen = oldContext / low;
  const highFreqWavelen = oldContext / high;
  return invFreq.map((inv) => {
    const wavelen = f(f(2 * Math.PI) / inv);
    const scaled = wavelen > lowFreqWavelen ? f(inv / factor) : inv;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (!isMedium) return scaled;
    const smooth = f(f(f(f(oldContext) / wavelen) - f(low)) / f(high - low));
    return f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
  });
}
