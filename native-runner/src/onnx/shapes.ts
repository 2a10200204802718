import type { AttrValue, Graph, Node, TensorValue } from './graph';
import { OnnxDataType } from './schema';

/**
 * Static shapes of every value of a graph whose inputs all have concrete dims, by evaluating the small integer
 * tensors that shapes are computed from (Shape, Concat, Gather, Squeeze, Range...). The gradient builder needs
 * them to undo broadcasting and slicing with constant axes and pads, which lets ONNX Runtime fold all shape
 * arithmetic of a training graph away.
 */

export interface Shapes {
  shape(value: string): number[];
  /** the value of a small integer tensor known at build time, if it is one */
  known(value: string): number[] | undefined;
}

type Rule = (n: Node, s: ShapeState) => number[];

/**
 * Shapes inferred node by node. `infer` may be called again for nodes appended later. A subgraph's state falls back
 * on its parent's for the values it reads from outside (a Loop body reads the weights and the main graph's inputs).
 */
export class ShapeState implements Shapes {
  readonly shapes = new Map<string, number[]>();
  readonly values = new Map<string, number[]>();

  constructor(
    readonly graph: Graph,
    private readonly outer?: ShapeState,
  ) {
    for (const input of graph.inputs) {
      if (input.dims.some((d) => typeof d !== 'number')) throw new Error(`input ${input.name} has symbolic dims [${input.dims}]`);
      this.shapes.set(input.name, input.dims as number[]);
    }
  }

  infer(nodes: Node[]): this {
    for (const [name, t] of this.graph.initializers) {
      if (this.shapes.has(name)) continue;
      this.shapes.set(name, t.dims);
      if ('data' in t && (t.elemType === 'int64' || t.elemType === 'int32') && t.data.length <= 8 * 64) this.values.set(name, intValues(t));
    }
    for (const node of nodes) {
      const rule = RULES[node.op];
      if (!rule) throw new Error(`no shape rule for ${node.op}`);
      this.shapes.set(node.outputs[0], rule(node, this));
      const value = EVALUATE[node.op]?.(node, this);
      if (value) this.values.set(node.outputs[0], value);
    }
    return this;
  }

  shape(value: string): number[] {
    const s = this.find(value);
    if (!s) throw new Error(`no static shape for ${value}`);
    return s;
  }

  /** weights may join the root graph after its shapes were inferred, when a subgraph first uses them */
  private find(value: string): number[] | undefined {
    return this.shapes.get(value) ?? this.graph.initializers.get(value)?.dims ?? this.outer?.find(value);
  }

  known(value: string): number[] | undefined {
    return this.values.get(value) ?? this.outer?.known(value);
  }

  value(value: string): number[] {
    const v = this.known(value);
    if (!v) throw new Error(`${value} is not known at build time`);
    return v;
  }
}

export function inferShapes(graph: Graph): Shapes {
  return new ShapeState(graph).infer(graph.nodes);
}

function intValues(t: TensorValue): number[] {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const width = t.elemType === 'int64' ? 8 : 4;
  return Array.from({ length: t.data.byteLength / width }, (_, i) =>
    width === 8 ? Number(view.getBigInt64(i * 8, true)) : view.getInt32(i * 4, true),
  );
}

const attr = (n: Node, name: string, fallback: number): number => (n.attrs[name] as number | undefined) ?? fallback;
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) ? v : undefined);
const axis = (a: number, rank: number) => (a < 0 ? a + rank : a);

/** numpy broadcasting of any number of shapes */
export function broadcast(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => {
    const dims = shapes.map((s) => s[s.length - rank + i] ?? 1).filter((d) => d !== 1);
    if (new Set(dims).size > 1) throw new Error(`shapes ${shapes.map((s) => `[${s}]`).join(' ')} do not broadcast`);
    return dims[0] ?? 1;
  });
}

const elementwise: Rule = (n, s) => broadcast(...n.inputs.map((i) => s.shape(i)));
const same: Rule = (n, s) => s.shape(n.inputs[0]);

function reshape(n: Node, s: ShapeState): number[] {
  const input = s.shape(n.inputs[0]);
  const target = s.value(n.inputs[1]).map((d, i) => (d === 0 ? input[i] : d));
  const total = input.reduce((a, b) => a * b, 1);
  const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return target.map((d) => (d === -1 ? total / known : d));
}

function sliceShape(n: Node, s: ShapeState): number[] {
  const out = [...s.shape(n.inputs[0])];
  const [starts, ends, axes] = [1, 2, 3].map((i) => s.value(n.inputs[i]));
  axes.forEach((a, i) => {
    const ax = axis(a, out.length);
    const [from, to] = [starts[i], ends[i]].map((x) => Math.min(Math.max(x < 0 ? x + out[ax] : x, 0), out[ax]));
    out[ax] = Math.max(0, to - from);
  });
  return out;
}

function gather(n: Node, s: ShapeState): number[] {
  const data = s.shape(n.inputs[0]);
  const ax = axis(attr(n, 'axis', 0), data.length);
  return [...data.slice(0, ax), ...s.shape(n.inputs[1]), ...data.slice(ax + 1)];
}

function unsqueeze(n: Node, s: ShapeState): number[] {
  const out = [...s.shape(n.inputs[0])];
  const axes = s.value(n.inputs[1]);
  const rank = out.length + axes.length;
  for (const a of axes.map((a) => axis(a, rank)).sort((x, y) => x - y)) out.splice(a, 0, 1);
  return out;
}

function squeeze(n: Node, s: ShapeState): number[] {
  const input = s.shape(n.inputs[0]);
  const axes = s.value(n.inputs[1]).map((a) => axis(a, input.length));
  return input.filter((_, i) => !axes.includes(i));
}

function reduce(n: Node, s: ShapeState): number[] {
  const input = s.shape(n.inputs[0]);
  const axes = n.inputs[1] ? s.value(n.inputs[1]).map((a) => axis(a, input.length)) : input.map((_, i) => i);
  const keep = attr(n, 'keepdims', 1) === 1;
  return input.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
}

function matmul(n: Node, s: ShapeState): number[] {
  const [a, b] = n.inputs.map((i) => s.shape(i));
  const batch = broadcast(a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}

function gemm(n: Node, s: ShapeState): number[] {
  const [a, b] = n.inputs.map((i) => s.shape(i));
  const rows = attr(n, 'transA', 0) ? a[1] : a[0];
  const cols = attr(n, 'transB', 0) ? b[0] : b[1];
  return [rows, cols];
}

function concat(n: Node, s: ShapeState): number[] {
  const shapes = n.inputs.map((i) => s.shape(i));
  const out = [...shapes[0]];
  const ax = axis(attr(n, 'axis', 0), out.length);
  out[ax] = shapes.reduce((sum, sh) => sum + sh[ax], 0);
  return out;
}

const RULES: Record<string, Rule> = {
  Add: elementwise,
  Sub: elementwise,
  Mul: elementwise,
  Div: elementwise,
  Where: elementwise,
  And: elementwise,
  Less: elementwise,
  LessOrEqual: elementwise,
  Identity: same,
  Neg: same,
  Sqrt: same,
  Reciprocal: same,
  Sigmoid: same,
  Cos: same,
  Sin: same,
  Cast: same,
  CastLike: same,
  Softmax: same,
  LogSoftmax: same,
  Reshape: reshape,
  Slice: sliceShape,
  Gather: gather,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  ReduceMean: reduce,
  ReduceSum: reduce,
  MatMul: matmul,
  Gemm: gemm,
  Concat: concat,
  Transpose: (n, s) => (ints(n.attrs.perm) ?? []).map((p) => s.shape(n.inputs[0])[p]),
  Shape: (n, s) => [shapeOf(n, s).length],
  Range: (n, s) => [Math.max(0, Math.ceil((s.value(n.inputs[1])[0] - s.value(n.inputs[0])[0]) / s.value(n.inputs[2])[0]))],
  ArgMax: (n, s) => {
    const input = s.shape(n.inputs[0]);
    const ax = axis(attr(n, 'axis', 0), input.length);
    return input.flatMap((d, i) => (i !== ax ? [d] : attr(n, 'keepdims', 1) ? [1] : []));
  },
  OneHot: (n, s) => [...s.shape(n.inputs[0]), s.value(n.inputs[1])[0]],
  GatherElements: (n, s) => s.shape(n.inputs[1]),
};

function shapeOf(n: Node, s: ShapeState): number[] {
  const full = s.shape(n.inputs[0]);
  const start = attr(n, 'start', 0);
  const end = (n.attrs.end as number | undefined) ?? full.length;
  return full.slice(axis(start, full.length), axis(end, full.length));
}

/** Integer results that shapes are made of, evaluated at build time. */
const EVALUATE: Record<string, (n: Node, s: ShapeState) => number[] | undefined> = {
  Shape: (n, s) => shapeOf(n, s),
  Concat: (n, s) => (n.inputs.every((i) => s.known(i)) ? n.inputs.flatMap((i) => s.value(i)) : undefined),
  Squeeze: (n, s) => s.known(n.inputs[0]),
  Unsqueeze: (n, s) => s.known(n.inputs[0]),
  Identity: (n, s) => s.known(n.inputs[0]),
  Cast: (n, s) => (n.attrs.to === OnnxDataType.INT64 || n.attrs.to === OnnxDataType.INT32 ? s.known(n.inputs[0]) : undefined),
  Sub: (n, s) => binary(n, s, (a, b) => a - b),
  Add: (n, s) => binary(n, s, (a, b) => a + b),
  Gather: (n, s) => {
    const data = s.known(n.inputs[0]);
    const idx = s.known(n.inputs[1]);
    return data && idx ? idx.map((i) => data[i < 0 ? i + data.length : i]) : undefined;
  },
};

function binary(n: Node, s: ShapeState, f: (a: number, b: number) => number): number[] | undefined {
  const [a, b] = n.inputs.map((i) => s.known(i));
  if (!a || !b) return undefined;
  const len = Math.max(a.length, b.length);
  return Array.from({ length: len }, (_, i) => f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]));
}
