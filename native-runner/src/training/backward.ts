import type { Graph } from '../onnx/graph';
import { OnnxDataType } from '../onnx/schema';
import type { Shapes } from '../onnx/shapes';
import { GRADIENT_RULES } from './gradients';

/**
 * Reverse-mode differentiation of a graph under construction: walks its nodes backwards from the seeded
 * gradients and appends, for every node on a path from a parameter to a seed, the ops of its gradient rule.
 * Nodes off those paths get no gradient ops, so frozen weights never have their gradients materialised.
 *
 * `seeds` maps forward values to the names of their (already built) gradients; the result maps each of `wrt`
 * to the name of its gradient.
 */
export function appendBackward(
  g: Graph,
  shapes: Shapes,
  given: Map<string, string>,
  wrt: string[],
  lowPrecision = OnnxDataType.FLOAT16,
): Map<string, string> {
  // values may have been renamed since the caller named them (a value that became a graph output takes its name)
  const seeds = new Map([...given].map(([value, grad]) => [g.resolve(value), g.resolve(grad)]));
  const forwardNodes = [...g.nodes];
  const active = activeValues(
    g,
    seeds,
    wrt.map((p) => g.resolve(p)),
  );
  const contributions = new Map<string, string[]>();
  for (const [value, grad] of seeds) contributions.set(value, [grad]);
  const producers = new Map(forwardNodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const producer = (value: string) => producers.get(value);

  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i];
    const dy = total(g, contributions.get(node.outputs[0]));
    if (!dy) continue;
    const wanted = node.inputs.map((x) => active.has(x));
    if (!wanted.some(Boolean)) continue;
    const rule = GRADIENT_RULES[node.op];
    if (!rule) throw new Error(`no gradient rule for ${node.op} (output ${node.outputs[0]})`);
    rule({ g, shapes, node, dy, wanted, producer, lowPrecision }).forEach((grad, k) => {
      if (!grad || !wanted[k]) return;
      const list = contributions.get(node.inputs[k]) ?? [];
      list.push(grad);
      contributions.set(node.inputs[k], list);
    });
  }
  return new Map(
    wrt.map((p) => {
      const grad = total(g, contributions.get(g.resolve(p)));
      if (!grad) throw new Error(`${p} does not reach the loss`);
      return [p, grad];
    }),
  );
}

/** Values that depend on a parameter and that a seed depends on: exactly those that need gradients. */
function activeValues(g: Graph, seeds: Map<string, string>, wrt: string[]): Set<string> {
  const fromParams = new Set(wrt);
  for (const node of g.nodes) {
    if (node.inputs.some((x) => fromParams.has(x))) node.outputs.forEach((o) => fromParams.add(o));
  }
  const toSeeds = new Set(seeds.keys());
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i];
    if (node.outputs.some((o) => toSeeds.has(o))) node.inputs.forEach((x) => toSeeds.add(x));
  }
  return new Set([...fromParams].filter((v) => toSeeds.has(v)));
}

/** A value used by several nodes gets the sum of their gradients. */
function total(g: Graph, grads: string[] | undefined): string | undefined {
  if (!grads || grads.length === 0) return undefined;
  return grads.reduce((sum, x) => g.op('Add', [sum, x]));
}
