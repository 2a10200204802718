/**
 * AdamW as torch.optim.AdamW computes it (single-tensor path): decoupled weight decay applied to the parameter
 * first, then the bias-corrected Adam step, every operation rounded to float32 as torch's float32 tensors are.
 */

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

export interface AdamWState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export function newAdamWState(size: number): AdamWState {
  return { step: 0, m: new Float32Array(size), v: new Float32Array(size) };
}

/** One update of `param` in place with learning rate `lr` (the schedule's value for this step). */
export function adamwStep(param: Float32Array, grad: Float32Array, state: AdamWState, h: AdamWHyper, lr: number, decays: boolean): void {
  const f = Math.fround;
  state.step += 1;
  const decay = decays ? f(1 - lr * h.weightDecay) : 1;
  const stepSize = lr / (1 - h.beta1 ** state.step);
  const correction2Sqrt = Math.sqrt(1 - h.beta2 ** state.step);
  const { m, v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    param[i] = f(param[i] * decay);
    m[i] = f(m[i] + f(f(1 - h.beta1) * f(g - m[i]))); // lerp towards g
    v[i] = f(f(v[i] * h.beta2) + f(f(1 - h.beta2) * f(g * g)));
    const denom = f(f(Math.sqrt(v[i]) / correction2Sqrt) + h.eps);
    param[i] = f(param[i] - f(stepSize * f(m[i] / denom)));
  }
}

/** The L2 norm of all gradients together. */
export function globalNorm(grads: Iterable<Float32Array>): number {
  let sumSquares = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
  return Math.sqrt(sumSquares);
}

/** Scales all gradients so that their global norm is at most maxNorm (torch.nn.utils.clip_grad_norm_); returns the norm before clipping. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  const scale = maxNorm / (norm + 1e-6);
  if (scale < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = Math.fround(g[i] * scale);
  return norm;
}
