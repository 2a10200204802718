import type { Model } from '../runtime/model';
import type { Example } from '../training/lossBatch';
import { Trainer } from '../training/trainer';
import type { TuneSpec } from '../training/parameters';
import type { Check } from './conformance';
import type { ReferenceCase } from './referenceCase';

/** The README's tolerances for training: gradients within 1e-4 absolute or 1e-3 relative, losses within 1e-4. */
const GRAD_ABS = 1e-4;
const GRAD_REL = 1e-3;
const LOSS_TOL = 1e-4;
const ILL_CONDITIONED = 1e-5;

function trainer(model: Model, spec: TuneSpec, lr: number, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0): Trainer {
  return new Trainer(model, {
    spec,
    adamw: { lr, beta1: betas[0], beta2: betas[1], eps, weightDecay },
    schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 1 },
    maxGradNorm: 0,
    tokenQuantum: 1,
    rowQuantum: 1,
  });
}

/** The reference's gradients at the initial weights, by tensor name. */
function attentionGradients(c: ReferenceCase): Map<string, number[]> {
  return new Map(
    c.reference.attn_grads.flatMap((layer, l) =>
      Object.entries(layer).map(([name, g]) => [`model.layers.${l}.self_attn.${name}`, (g as number[]).flat()] as const),
    ),
  );
}

function example(c: ReferenceCase): Example[][] {
  return [[{ ids: c.reference.train_ids, labels: c.reference.train_labels }]];
}

/** The loss and the gradient of every attention projection of every layer, from one training graph. */
export async function checkGradients(model: Model, c: ReferenceCase): Promise<Record<string, Check>> {
  const t = trainer(model, { mode: 'attention', heads: [], includeKeyValue: false }, 0);
  const loss = await t.loss(example(c));
  const grads = await t.gradientsByTensor(example(c));
  const expected = [...attentionGradients(c)];
  const missing = expected.filter(([name]) => !grads.has(name));
  let err = missing.length ? Infinity : 0;
  let pass = missing.length === 0 && grads.size === expected.length;
  for (const [name, g] of expected) {
    const r = compareGrad(grads.get(name) ?? new Float32Array(), g);
    err = Math.max(err, r.err);
    pass &&= r.pass;
  }
  return {
    loss: { max_abs_err: Math.abs(loss - c.reference.loss), pass: Math.abs(loss - c.reference.loss) <= LOSS_TOL },
    attn_grads: { max_abs_err: err, pass },
  };
}

/** Elementwise: within 1e-4 absolute, 1e-3 relative, or the element's own extra tolerance. */
function compareGrad(actual: Float32Array, expected: number[], extra: (i: number) => number = () => 0): { err: number; pass: boolean } {
  if (actual.length !== expected.length) return { err: Infinity, pass: false };
  let err = 0;
  let pass = true;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    err = Math.max(err, e);
    pass &&= e <= GRAD_ABS || e <= GRAD_REL * Math.abs(expected[i]) || e <= extra(i);
  }
  return { err, pass: pass && !Number.isNaN(err) };
}

/**
 * Six AdamW steps where only the tuned heads' slices learn: the seven losses within 1e-4, exactly the tensors the
 * reference saw change, and each of their elements within the gradient tolerance. Adam divides every gradient
 * element by its own running magnitude, so an element whose gradient is pure float32 cancellation (|g| < 1e-5
 * at the start: k-bias entries of low RoPE frequencies, nearly shift-invariant under softmax) moves by an
 * amount that neither runtime determines beyond that noise; such elements are held to 1% of the largest
 * possible movement, steps x lr, instead.
 */
export async function checkAdamW(model: Model, c: ReferenceCase, withKeyValue: boolean): Promise<Check> {
  const run = withKeyValue ? c.reference.adamw_qkvo : c.reference.adamw_qo;
  const changed = withKeyValue ? c.reference.adamw_qkvo_changed_params : c.reference.adamw_qo_changed_params;
  const heads = c.reference.tuned_heads.map(([layer, head]) => ({ layer, head }));
  const t = trainer(model, { mode: 'heads', heads, includeKeyValue: withKeyValue }, run.lr, run.betas, run.eps, run.weight_decay);
  const losses: number[] = [];
  for (let i = 0; i < run.steps; i++) losses.push((await t.train(example(c))).loss);
  losses.push(await t.loss(example(c)));
  let err = Math.max(...losses.map((l, i) => Math.abs(l - run.losses[i])));
  let pass = losses.length === run.losses.length && err <= LOSS_TOL;
  const tuned = new Set(t.slices.map((s) => s.tensor));
  pass &&= tuned.size === Object.keys(changed).length;
  const initialGrad = attentionGradients(c);
  const noiseTolerance = 0.01 * run.steps * run.lr;
  for (const [name, values] of Object.entries(changed)) {
    const grad = initialGrad.get(name)!;
    const tolerance = (i: number) => (Math.abs(grad[i]) < ILL_CONDITIONED ? noiseTolerance : 0);
    const r = compareGrad(tuned.has(name) ? t.tunedTensor(name) : new Float32Array(), (values as number[]).flat(), tolerance);
    err = Math.max(err, r.err);
    pass &&= r.pass;
  }
  return { max_abs_err: err, pass };
}
