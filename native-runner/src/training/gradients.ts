import type { Graph, Node } from '../onnx/graph';
import { OnnxDataType } from '../onnx/schema';
import { broadcast, type Shapes } from '../onnx/shapes';

/**
 * Gradient rules, one per forward op, written as standard ONNX ops. A rule receives the gradient of the node's
 * output (`dy`, same shape as the output) and returns the gradient of each input that `wanted` marks, with the
 * input's shape: broadcasting is undone by summing over the broadcast axes. All shapes are static (training
 * graphs have fixed input sizes), so axes, pads and split sizes are constants.
 */

export interface RuleContext {
  g: Graph;
  shapes: Shapes;
  node: Node;
  /** gradient of the node's output */
  dy: string;
  /** which inputs need a gradient */
  wanted: boolean[];
  /** the forward node that computed a value (none for inputs and initializers) */
  producer(value: string): Node | undefined;
  /** the graph's half-precision type (float16 or bfloat16), which casts go to and from float32 */
  lowPrecision: OnnxDataType;
}

type Grads = (string | undefined)[];
export type GradientRule = (c: RuleContext) => Grads;

const FLOAT = OnnxDataType.FLOAT;

export const GRADIENT_RULES: Record<string, GradientRule> = {
  Identity: ({ dy }) => [dy],
  Add: (c) => [sumTo(c, c.dy, 0), sumTo(c, c.dy, 1)],
  Sub: (c) => [sumTo(c, c.dy, 0), c.wanted[1] ? sumTo(c, c.g.op('Neg', [c.dy]), 1) : undefined],
  Mul: (c) => {
    const [a, b] = c.node.inputs;
    return [c.wanted[0] ? sumTo(c, times(c, c.dy, b), 0) : undefined, c.wanted[1] ? sumTo(c, times(c, c.dy, a), 1) : undefined];
  },
  Div: (c) => {
    const [, b] = c.node.inputs;
    const y = c.node.outputs[0];
    const da = c.g.op('Div', [c.dy, b]);
    return [
      c.wanted[0] ? sumTo(c, da, 0) : undefined,
      c.wanted[1] ? sumTo(c, c.g.op('Neg', [c.g.op('Div', [c.g.op('Mul', [c.dy, y]), b])]), 1) : undefined,
    ];
  },
  Neg: ({ g, dy }) => [g.op('Neg', [dy])],
  // d(1/x) = -y^2
  Reciprocal: ({ g, dy, node }) => {
    const y = node.outputs[0];
    return [g.op('Neg', [g.op('Mul', [dy, g.op('Mul', [y, y])])])];
  },
  // d sqrt(x) = 1 / (2y)
  Sqrt: (c) => [c.g.op('Div', [c.dy, c.g.op('Mul', [c.node.outputs[0], scalarLike(c, 2)])])],
  // d sigmoid(x) = y (1 - y)
  Sigmoid: (c) => {
    const y = c.node.outputs[0];
    return [c.g.op('Mul', [c.dy, c.g.op('Mul', [y, c.g.op('Sub', [scalarLike(c, 1), y])])])];
  },
  Cast: ({ g, dy, node, lowPrecision }) => {
    if (node.attrs.to !== FLOAT && node.attrs.to !== lowPrecision)
      throw new Error("only casts between float32 and the graph's half precision carry gradients");
    return [g.op('Cast', [dy], { to: node.attrs.to === FLOAT ? lowPrecision : FLOAT })];
  },
  Reshape: (c) => [reshapeTo(c, c.dy, 0)],
  Squeeze: (c) => [reshapeTo(c, c.dy, 0)],
  Unsqueeze: (c) => [reshapeTo(c, c.dy, 0)],
  Transpose: ({ g, dy, node }) => {
    const perm = node.attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [g.op('Transpose', [dy], { perm: inverse })];
  },
  Slice: sliceGradient,
  Concat: concatGradient,
  Gather: gatherGradient,
  Gemm: gemmGradient,
  MatMul: matmulGradient,
  // softmax: dx = y * (dy - sum(dy * y))
  Softmax: ({ g, dy, node }) => {
    if (node.attrs.axis !== -1) throw new Error('Softmax gradients are written for the last axis');
    const y = node.outputs[0];
    const dot = g.op('ReduceSum', [g.op('Mul', [dy, y]), g.ints([-1])], { keepdims: 1 });
    return [g.op('Mul', [y, g.op('Sub', [dy, dot])])];
  },
  Where: (c) => {
    const [condition] = c.node.inputs;
    const zero = scalarLike(c, 0);
    return [
      undefined,
      c.wanted[1] ? sumTo(c, c.g.op('Where', [condition, c.dy, zero]), 1) : undefined,
      c.wanted[2] ? sumTo(c, c.g.op('Where', [condition, zero, c.dy]), 2) : undefined,
    ];
  },
  ReduceMean: (c) => {
    const input = c.shapes.shape(c.node.inputs[0]);
    const output = c.shapes.shape(c.node.outputs[0]);
    const count = input.reduce((a, b) => a * b, 1) / output.reduce((a, b) => a * b, 1);
    return [expandTo(c, c.g.op('Div', [c.dy, scalarLike(c, count)]))];
  },
  ReduceSum: (c) => [expandTo(c, c.dy)],
};

/**
 * dy * x. When x is SiLU's product g * sigmoid(g) (the MLP's gate, as the SwiGLU up-projection multiplies it), the
 * product is taken as (dy * g) * sigmoid(g): g and sigmoid(g) are kept for SiLU's own gradient anyway, so the
 * backward pass then keeps three [N, I] values per MLP instead of four, as torch's fused SiLU does. (ONNX Runtime
 * runs a node as soon as its inputs exist and merges identical ones, so recomputing x itself would save nothing.)
 */
function times(c: RuleContext, dy: string, x: string): string {
  const node = c.producer(x);
  const [g, s] = node?.op === 'Mul' ? node.inputs : [];
  const sigmoid = (value: string | undefined) => (value === undefined ? undefined : c.producer(value));
  if (sigmoid(s)?.op === 'Sigmoid' && sigmoid(s)!.inputs[0] === g) return c.g.op('Mul', [c.g.op('Mul', [dy, g]), s]);
  if (sigmoid(g)?.op === 'Sigmoid' && sigmoid(g)!.inputs[0] === s) return c.g.op('Mul', [c.g.op('Mul', [dy, s]), g]);
  return c.g.op('Mul', [dy, x]);
}

/** A constant in dy's element type: half precision in the parts of a float16 graph that run in it. */
function scalarLike(c: RuleContext, value: number): string {
  return c.g.op('CastLike', [c.g.scalar(value), c.dy]);
}

/** dy (of the output's shape, or `from`) summed over the axes along which input i was broadcast. */
function sumTo(c: RuleContext, dy: string, i: number, from = c.shapes.shape(c.node.outputs[0])): string | undefined {
  if (!c.wanted[i]) return undefined;
  const target = c.shapes.shape(c.node.inputs[i]);
  const lead = from.length - target.length;
  const axes = from.flatMap((d, axis) => (axis < lead || (target[axis - lead] === 1 && d !== 1) ? [axis] : []));
  if (axes.length === 0) return dy;
  const summed = c.g.op('ReduceSum', [dy, c.g.ints(axes)], { keepdims: 1 });
  return c.g.op('Reshape', [summed, c.g.ints(target)]);
}

function reshapeTo(c: RuleContext, dy: string, i: number): string {
  return c.g.op('Reshape', [dy, c.g.ints(c.shapes.shape(c.node.inputs[i]))]);
}

/** Reductions kept their axes (keepdims) or not; either way the gradient is spread back over the input. */
function expandTo(c: RuleContext, dy: string): string {
  if (c.node.attrs.keepdims === 0) throw new Error('reduction gradients are written for keepdims=1');
  return c.g.op('Expand', [dy, c.g.ints(c.shapes.shape(c.node.inputs[0]))]);
}

/** The slice's gradient is dy padded with zeros back to the input's extent. */
function sliceGradient(c: RuleContext): Grads {
  const { g, shapes, node } = c;
  const input = shapes.shape(node.inputs[0]);
  const [starts, ends, axes] = [1, 2, 3].map((i) => shapes.known(node.inputs[i])!);
  const steps = node.inputs[4] ? shapes.known(node.inputs[4])! : axes.map(() => 1);
  if (steps.some((s) => s !== 1)) throw new Error('Slice gradients are written for step 1');
  const pads = new Array<number>(2 * input.length).fill(0);
  axes.forEach((a, i) => {
    const axis = a < 0 ? a + input.length : a;
    const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + input[axis] : x, 0), input[axis]);
    pads[axis] = clamp(starts[i]);
    // an empty slice (end <= start) still pads back to the full extent
    pads[axis + input.length] = input[axis] - Math.max(clamp(starts[i]), clamp(ends[i]));
  });
  return [g.op('Pad', [c.dy, g.ints(pads)])];
}

function concatGradient(c: RuleContext): Grads {
  const { g, shapes, node } = c;
  const rank = shapes.shape(node.outputs[0]).length;
  const axis = (node.attrs.axis as number) < 0 ? (node.attrs.axis as number) + rank : (node.attrs.axis as number);
  const sizes = node.inputs.map((x) => shapes.shape(x)[axis]);
  const outputs = node.inputs.map(() => g.fresh('split'));
  g.opMulti('Split', [c.dy, g.ints(sizes)], outputs, { axis });
  return outputs.map((o, i) => (c.wanted[i] ? o : undefined));
}

/**
 * Rows gathered from a table (embeddings, selected positions): their gradients are added back into place. A row
 * gathered more than once (a repeated token) must receive the sum of its gradients, and ORT's CPU ScatterND with
 * reduction="add" loses some of them: it adds the updates of several threads to the same row without
 * synchronisation. So the gradients are summed per distinct index first, by a product with the one-hot map from
 * gathered rows to distinct indices (deterministic, and a matrix product on every device), and then written
 * once per distinct row.
 */
function gatherGradient(c: RuleContext): Grads {
  const { g, shapes, node } = c;
  if (((node.attrs.axis as number | undefined) ?? 0) !== 0) throw new Error('Gather gradients are written for axis 0');
  const [data, indices] = node.inputs;
  const [rows, ...rowShape] = shapes.shape(data);
  const width = rowShape.reduce((a, b) => a * b, 1);
  // negative indices count from the end; made non-negative so that -1 and rows-1 are one row
  const flat = g.op('Mod', [g.op('Add', [g.op('Reshape', [indices, g.ints([-1])]), g.scalar(rows, 'int64')]), g.scalar(rows, 'int64')]); // [N]
  const [distinct, , inverse] = g.opMulti('Unique', [flat], [g.fresh('distinct'), g.fresh('first'), g.fresh('inverse'), g.fresh('counts')], {
    sorted: 1,
  });
  const oneHot = g.op('OneHot', [inverse, g.op('Shape', [distinct]), g.op('CastLike', [g.constant('off_on', 'float32', [2], [0, 1]), c.dy])], {
    axis: -1,
  }); // [N, K]
  const perRow = g.op('Reshape', [c.dy, g.ints([-1, width])]); // [N, width]
  const summed = g.op('MatMul', [g.op('Transpose', [oneHot], { perm: [1, 0] }), perRow]); // [K, width]
  const zeros = g.op('Expand', [scalarLike(c, 0), g.ints([rows, ...rowShape])]);
  const where = g.op('Unsqueeze', [distinct, g.ints([-1])]); // [K, 1]
  return [g.op('ScatterND', [zeros, where, g.op('Reshape', [summed, g.ints([-1, ...rowShape])])]), undefined];
}

/** y = a b^T + c (transB) or a b + c, with a [N, in]. */
function gemmGradient(c: RuleContext): Grads {
  const { g, node, dy } = c;
  if (node.attrs.transA) throw new Error('Gemm gradients are written for transA=0');
  const scale = (name: string) => (node.attrs[name] as { float: number } | undefined)?.float ?? 1;
  if (scale('alpha') !== 1 || scale('beta') !== 1) throw new Error('Gemm gradients are written for alpha = beta = 1');
  const [a, b] = node.inputs;
  const transB = node.attrs.transB === 1;
  const da = c.wanted[0] ? g.op('Gemm', [dy, b], transB ? {} : { transB: 1 }) : undefined;
  const db = c.wanted[1] ? (transB ? g.op('Gemm', [dy, a], { transA: 1 }) : g.op('Gemm', [a, dy], { transA: 1 })) : undefined;
  const dc = c.wanted[2] ? sumTo(c, dy, 2) : undefined;
  return [da, db, dc];
}

/** Batched y = a b: da = dy b^T, db = a^T dy, each summed over broadcast batch axes. */
function matmulGradient(c: RuleContext): Grads {
  const { g, shapes, node, dy } = c;
  const [a, b] = node.inputs;
  const swapLast = (x: string) => {
    const rank = shapes.shape(x).length;
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return g.op('Transpose', [x], { perm });
  };
  const [sa, sb] = [shapes.shape(a), shapes.shape(b)];
  const batch = broadcast(sa.slice(0, -2), sb.slice(0, -2));
  return [
    c.wanted[0] ? sumTo(c, g.op('MatMul', [dy, swapLast(b)]), 0, [...batch, ...sa.slice(-2)]) : undefined,
    c.wanted[1] ? sumTo(c, g.op('MatMul', [swapLast(a), dy]), 1, [...batch, ...sb.slice(-2)]) : undefined,
  ];
}
