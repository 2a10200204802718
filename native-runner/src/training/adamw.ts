import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph';

/**
 * AdamW inside the training graph, as torch.optim.AdamW computes it on float32 tensors (single-tensor path):
 * decoupled weight decay applied to the parameter first, then the bias-corrected Adam step, each operation a
 * float32 op with torch's operand order, and global-norm clipping before it as torch.nn.utils.clip_grad_norm_ does.
 * The moments and the parameters never leave the device: the graph takes them in and gives the updated ones out.
 */

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** A block's optimizer state: its step count, and its first and second moments (float32, the block's shape). */
export interface AdamWState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

/**
 * Zeroed moments, written through once so that their memory is in place before the first step (a fresh array's
 * pages are only mapped when first written, which the first step would otherwise pay for: 4 GB for a 0.5B model).
 */
export function newAdamWState(size: number): AdamWState {
  return { step: 0, m: new Float32Array(size).fill(0), v: new Float32Array(size).fill(0) };
}

/** The per-step scalars, float32 graph inputs, computed on the host in float64 as torch computes them in Python. */
export const ADAMW_INPUTS = { decay: 'adamw_decay', stepSize: 'adamw_step_size', bias2Sqrt: 'adamw_bias2_sqrt', maxNorm: 'clip_max_norm' } as const;

export function declareAdamWInputs(g: Graph): void {
  for (const name of Object.values(ADAMW_INPUTS)) g.input(name, 'float32', []);
}

/** Feeds for step number `step` (1-based, as torch counts after incrementing) at learning rate `lr`. */
export function adamwFeeds(h: AdamWHyper, lr: number, step: number, maxGradNorm: number): Record<string, ort.Tensor> {
  const scalar = (x: number) => new ort.Tensor('float32', Float32Array.of(x), []);
  return {
    [ADAMW_INPUTS.decay]: scalar(1 - lr * h.weightDecay),
    [ADAMW_INPUTS.stepSize]: scalar(lr / (1 - h.beta1 ** step)),
    [ADAMW_INPUTS.bias2Sqrt]: scalar(Math.sqrt(1 - h.beta2 ** step)),
    // no clipping: a norm no gradient reaches, so that the scale is exactly 1
    [ADAMW_INPUTS.maxNorm]: scalar(maxGradNorm > 0 ? maxGradNorm : Infinity),
  };
}

/**
 * The global L2 norm of all gradients (float32 scalar) and the clipped gradients: each times
 * min(1, max_norm / (norm + 1e-6)), torch's clip_coef_clamped.
 */
export function clipByGlobalNorm(g: Graph, grads: string[]): { norm: string; clipped: string[] } {
  const squares = grads.map((x) => g.op('ReduceSumSquare', [x], { keepdims: 0 }));
  const norm = g.op('Sqrt', [squares.length === 1 ? squares[0] : g.op('Sum', squares)]);
  const coef = g.op('Div', [ADAMW_INPUTS.maxNorm, g.op('Add', [norm, g.scalar(1e-6)])]);
  const scale = g.op('Min', [coef, g.scalar(1)]);
  return { norm, clipped: grads.map((x) => g.op('Mul', [x, scale])) };
}

export interface AdamWBlock {
  param: string;
  grad: string;
  m: string;
  v: string;
  /** decoupled weight decay applies to weight matrices, not to biases and norm weights */
  decays: boolean;
}

/** One update of one block: the new parameter and moments. */
export function appendAdamW(g: Graph, h: AdamWHyper, b: AdamWBlock): { param: string; m: string; v: string } {
  const I = ADAMW_INPUTS;
  const param = b.decays ? g.op('Mul', [b.param, I.decay]) : b.param; // param.mul_(1 - lr * weight_decay)
  const m = g.op('Add', [b.m, g.op('Mul', [g.op('Sub', [b.grad, b.m]), g.scalar(1 - h.beta1)])]); // exp_avg.lerp_(grad, 1 - beta1)
  const v = g.op('Add', [g.op('Mul', [b.v, g.scalar(h.beta2)]), g.op('Mul', [g.op('Mul', [b.grad, g.scalar(1 - h.beta2)]), b.grad])]); // mul_(beta2).addcmul_(grad, grad, 1 - beta2)
  const denom = g.op('Add', [g.op('Div', [g.op('Sqrt', [v]), I.bias2Sqrt]), g.scalar(h.eps)]); // (sqrt / bias_correction2_sqrt).add_(eps)
  const update = g.op('Div', [g.op('Mul', [m, g.op('Neg', [I.stepSize])]), denom]); // addcdiv_: value * exp_avg / denom
  return { param: g.op('Add', [param, update]), m, v };
}
