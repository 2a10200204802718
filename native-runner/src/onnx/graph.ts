import { AttributeType, ModelProto, OnnxDataType } from './schema';

/**
 * An ONNX graph under construction, kept as a plain list of nodes so that later passes (the reverse-mode
 * gradient builder) can read it back before it is serialised. A graph may be a subgraph (the body of a Loop or a
 * branch of an If): it reads its parent's values by name, and ONNX wants every name unique across all of them, so
 * fresh names come from one counter per model, prefixed with the subgraph's scope. Weights always live in the
 * root graph, where every subgraph can see them: one copy however many passes use them.
 */

export type ElemType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8';
export type Dim = number | string;
export type AttrValue = number | string | number[] | { ints: number[] } | { float: number } | { floats: number[] } | { graph: Graph } | TensorValue;

export interface TensorValue {
  elemType: ElemType;
  dims: number[];
  data: Uint8Array;
}

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  domain?: string;
}

export interface ValueInfo {
  name: string;
  elemType: ElemType;
  dims: Dim[];
}

/** A weight whose bytes live in a file next to the model (ONNX external data). */
export interface ExternalTensor {
  elemType: ElemType;
  dims: number[];
  /** path relative to the model file */
  location: string;
  offset: number;
  length: number;
}

const ONNX_TYPES: Record<ElemType, OnnxDataType> = {
  float32: OnnxDataType.FLOAT,
  float16: OnnxDataType.FLOAT16,
  bfloat16: OnnxDataType.BFLOAT16,
  int64: OnnxDataType.INT64,
  int32: OnnxDataType.INT32,
  bool: OnnxDataType.BOOL,
  uint8: OnnxDataType.UINT8,
};

export const OPSET = 21;
const IR_VERSION = 10;

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers = new Map<string, TensorValue | ExternalTensor>();
  /** the model's main graph: the root of itself and of every subgraph */
  readonly root: Graph;
  private readonly scope: string;
  private counter = 0;
  /** values renamed to become outputs, kept on the root for the whole model: later references follow them */
  private readonly renamed = new Map<string, string>();

  constructor(
    readonly name: string,
    parent?: Graph,
  ) {
    this.root = parent?.root ?? this;
    this.scope = parent ? `${parent.scope}${name}/` : '';
  }

  /** A graph that runs inside this one, as a Loop body or an If branch. */
  subgraph(name: string): Graph {
    return new Graph(name, this);
  }

  /** A fresh value name that says where it came from. */
  fresh(hint: string): string {
    return `${this.scope}${hint}_${this.root.counter++}`;
  }

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push({ name, elemType, dims });
    return name;
  }

  /**
   * Exposes `value` as the graph output `name`. A value computed by a node of this graph is renamed, so that the node
   * writes the output itself (ONNX Runtime keeps an Identity before a graph output, and it copies); anything else
   * (an input, an initializer, a value that is already an output) goes through an Identity.
   */
  output(name: string, value: string, elemType: ElemType, dims: Dim[]): void {
    value = this.resolve(value);
    if (value !== name) {
      const computed = this.nodes.some((n) => n.outputs.includes(value));
      const exposed = this.outputs.some((o) => o.name === value);
      if (computed && !exposed) this.rename(value, name);
      else this.op('Identity', [value], {}, name);
    }
    this.outputs.push({ name, elemType, dims });
  }

  /** Renames a value everywhere it appears: in this graph's nodes and in the subgraphs that read it. */
  private rename(from: string, to: string): void {
    this.root.renamed.set(from, to);
    this.renameIn(from, to);
  }

  private renameIn(from: string, to: string): void {
    for (const node of this.nodes) {
      node.inputs = node.inputs.map((x) => (x === from ? to : x));
      node.outputs = node.outputs.map((x) => (x === from ? to : x));
      for (const attr of Object.values(node.attrs)) {
        if (typeof attr === 'object' && 'graph' in attr) attr.graph.renameIn(from, to);
      }
    }
  }

  initializer(name: string, tensor: TensorValue | ExternalTensor): string {
    if (this.initializers.has(name)) throw new Error(`initializer ${name} defined twice`);
    this.initializers.set(name, tensor);
    return name;
  }

  /** A small constant baked into the graph. */
  constant(hint: string, elemType: ElemType, dims: number[], values: ArrayLike<number | bigint>): string {
    return this.initializer(this.fresh(hint), encodeTensor(elemType, dims, values));
  }

  ints(values: number[], hint = 'ints'): string {
    return this.constant(hint, 'int64', [values.length], values);
  }

  scalar(value: number, elemType: ElemType = 'float32'): string {
    return this.constant('scalar', elemType, [], [value]);
  }

  /** Appends a node; returns its single output, or `outputs` when given explicitly. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs: inputs.map((x) => this.resolve(x)), outputs: [out], attrs });
    return out;
  }

  opMulti(op: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): string[] {
    this.nodes.push({ op, inputs: inputs.map((x) => this.resolve(x)), outputs, attrs });
    return outputs;
  }

  /** The value's name now (a value that became an output has the output's name). */
  resolve(name: string): string {
    let current = name;
    for (let next = this.root.renamed.get(current); next !== undefined; next = this.root.renamed.get(current)) current = next;
    return current;
  }

  serialize(): Uint8Array {
    const message = ModelProto.fromObject({
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: OPSET }],
      producer_name: 'pinpoint',
      graph: this.proto(),
    });
    return ModelProto.encode(message).finish();
  }

  /** The GraphProto object: the model's main graph, or a subgraph (a Loop or If body) as an attribute. */
  proto(): object {
    return {
      name: this.name,
      node: this.nodes.map(nodeProto),
      initializer: [...this.initializers].map(([name, t]) => tensorProto(name, t)),
      input: this.inputs.map(valueInfoProto),
      output: this.outputs.map(valueInfoProto),
    };
  }
}

/** The TensorProto data type of an element type, for a Cast's `to`. */
export function onnxType(elemType: ElemType): OnnxDataType {
  return ONNX_TYPES[elemType];
}

export function bytesOf(elemType: ElemType): number {
  return { float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, bool: 1, uint8: 1 }[elemType];
}

export function encodeTensor(elemType: ElemType, dims: number[], values: ArrayLike<number | bigint>): TensorValue {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`constant of shape [${dims}] given ${values.length} values`);
  const data = new Uint8Array(n * bytesOf(elemType));
  const view = new DataView(data.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (elemType) {
      case 'float32':
        view.setFloat32(i * 4, Number(v), true);
        break;
      case 'int64':
        view.setBigInt64(i * 8, BigInt(v), true);
        break;
      case 'int32':
        view.setInt32(i * 4, Number(v), true);
        break;
      case 'bool':
      case 'uint8':
        view.setUint8(i, Number(v));
        break;
      case 'float16':
      case 'bfloat16':
        throw new Error(`${elemType} constants are given as raw TensorValue bytes`);
    }
  }
  return { elemType, dims, data };
}

function isExternal(t: TensorValue | ExternalTensor): t is ExternalTensor {
  return (t as ExternalTensor).location !== undefined;
}

function tensorProto(name: string, t: TensorValue | ExternalTensor): object {
  const base = { name, dims: t.dims, data_type: ONNX_TYPES[t.elemType] };
  if (!isExternal(t)) return { ...base, raw_data: t.data };
  return {
    ...base,
    data_location: 1,
    external_data: [
      { key: 'location', value: t.location },
      { key: 'offset', value: String(t.offset) },
      { key: 'length', value: String(t.length) },
    ],
  };
}

function valueInfoProto(v: ValueInfo): object {
  const dim = v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name: v.name, type: { tensor_type: { elem_type: ONNX_TYPES[v.elemType], shape: { dim } } } };
}

function nodeProto(n: Node, index: number): object {
  return {
    name: `${n.op}_${index}`,
    op_type: n.op,
    domain: n.domain ?? '',
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([name, value]) => attributeProto(name, value)),
  };
}

function attributeProto(name: string, v: AttrValue): object {
  if (typeof v === 'number') return { name, type: AttributeType.INT, i: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ('ints' in v) return { name, type: AttributeType.INTS, ints: v.ints };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
  if ('graph' in v) return { name, type: AttributeType.GRAPH, g: v.graph.proto() };
  return { name, type: AttributeType.TENSOR, t: tensorProto('', v) };
}
