import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { normalSampler } from '../../native-runner/src/seededRandom';
import { Graph } from '../../native-runner/src/onnx/graph';
import { inferShapes } from '../../native-runner/src/onnx/shapes';
import { appendBackward } from '../../native-runner/src/training/backward';
import { GRADIENT_RULES } from '../../native-runner/src/training/gradients';
import { tempDir } from '../fixtures/paths';

/**
 * Finite-difference checks of every reverse-mode gradient rule. Each case builds a tiny graph y = f(x, ...) on
 * float32 inputs of concrete shapes, adds the scalar objective L = sum(y * r) for a fixed random r (a graph
 * input, which is also the seed gradient of y), differentiates with appendBackward, and compares every element of
 * every analytic gradient with the central difference (L(x + h e_i) - L(x - h e_i)) / 2h from re-running the
 * same session with perturbed inputs.
 */

const DIR = tempDir('gradients');
after(() => fs.rmSync(DIR, { recursive: true, force: true }));

type Values = 'normal' | 'positive' | 'fp16';

interface InputOptions {
  /** normal: N(0, 1); positive: 1 + |N(0, 1)| / 2; fp16: N(0, 1) rounded to a multiple of 2^-8 (exact in float16) */
  values?: Values;
  /** a graph input that is fed but not differentiated */
  fixed?: boolean;
}

interface CaseContext {
  g: Graph;
  /** a float32 graph input with seeded values, differentiated unless `fixed` */
  x(name: string, dims: number[], options?: InputOptions): string;
  /** a constant bool tensor (Where's condition) */
  bool(dims: number[], values: number[]): string;
}

interface Case {
  name: string;
  /** the gradient rule this case exists for (composites that exercise several rules leave it out) */
  op?: string;
  build(c: CaseContext): string;
  /** relative tolerance, |analytic - numeric| <= tol * max(1, |numeric|) */
  tol?: number;
  /** finite-difference step */
  h?: number;
}

const SAFE_END = Number.MAX_SAFE_INTEGER; // how the decoder spells "to the end" in Slice

const CASES: Case[] = [
  { name: 'Identity', op: 'Identity', build: ({ g, x }) => g.op('Identity', [x('x', [2, 3, 4])]) },
  { name: 'Neg', op: 'Neg', build: ({ g, x }) => g.op('Neg', [x('x', [2, 3, 4])]) },
  { name: 'Sigmoid', op: 'Sigmoid', build: ({ g, x }) => g.op('Sigmoid', [x('x', [2, 3, 4])]) },
  { name: 'Sqrt of positive inputs', op: 'Sqrt', build: ({ g, x }) => g.op('Sqrt', [x('x', [2, 3, 4], { values: 'positive' })]) },
  {
    name: 'Reciprocal of positive inputs',
    op: 'Reciprocal',
    build: ({ g, x }) => g.op('Reciprocal', [x('x', [2, 3, 4], { values: 'positive' })]),
  },

  // elementwise binary ops, differentiating broadcast inputs
  { name: 'Add [2,3,4] + [2,3,1]', op: 'Add', build: ({ g, x }) => g.op('Add', [x('a', [2, 3, 4]), x('b', [2, 3, 1])]) },
  { name: 'Add [4] + [2,3,4]', op: 'Add', build: ({ g, x }) => g.op('Add', [x('a', [4]), x('b', [2, 3, 4])]) },
  { name: 'Sub [2,3,1] - [2,3,4]', op: 'Sub', build: ({ g, x }) => g.op('Sub', [x('a', [2, 3, 1]), x('b', [2, 3, 4])]) },
  { name: 'Sub [2,3,4] - [4]', op: 'Sub', build: ({ g, x }) => g.op('Sub', [x('a', [2, 3, 4]), x('b', [4])]) },
  { name: 'Mul [2,3,4] * [2,3,1]', op: 'Mul', build: ({ g, x }) => g.op('Mul', [x('a', [2, 3, 4]), x('b', [2, 3, 1])]) },
  { name: 'Mul [4] * [2,3,4]', op: 'Mul', build: ({ g, x }) => g.op('Mul', [x('a', [4]), x('b', [2, 3, 4])]) },
  {
    name: 'Mul [2,3,4] * fixed [1,3,1] (one side wanted)',
    op: 'Mul',
    build: ({ g, x }) => g.op('Mul', [x('a', [2, 3, 4]), x('w', [1, 3, 1], { fixed: true })]),
  },
  {
    name: 'Div [2,3,4] / [2,3,1]',
    op: 'Div',
    build: ({ g, x }) => g.op('Div', [x('a', [2, 3, 4]), x('b', [2, 3, 1], { values: 'positive' })]),
  },
  {
    name: 'Div [4] / [2,3,4]',
    op: 'Div',
    build: ({ g, x }) => g.op('Div', [x('a', [4]), x('b', [2, 3, 4], { values: 'positive' })]),
  },
  {
    name: 'Div [2,3,4] / [4]',
    op: 'Div',
    build: ({ g, x }) => g.op('Div', [x('a', [2, 3, 4]), x('b', [4], { values: 'positive' })]),
  },
  {
    name: 'Where constant cond [2,3,4], x [2,3,4], y [2,3,1]',
    op: 'Where',
    build: ({ g, x, bool }) => g.op('Where', [bool([2, 3, 4], pattern(24)), x('a', [2, 3, 4]), x('b', [2, 3, 1])]),
  },
  {
    name: 'Where constant cond [2,1,4], x [4], y [2,3,4]',
    op: 'Where',
    build: ({ g, x, bool }) => g.op('Where', [bool([2, 1, 4], pattern(8)), x('a', [4]), x('b', [2, 3, 4])]),
  },
  {
    name: 'Where constant cond, x [2,3,4], scalar constant',
    op: 'Where',
    build: ({ g, x, bool }) => g.op('Where', [bool([2, 3, 4], pattern(24)), x('a', [2, 3, 4]), g.scalar(-3)]),
  },

  // linear algebra
  {
    name: 'Gemm transB=1 with bias [out]',
    op: 'Gemm',
    build: ({ g, x }) => g.op('Gemm', [x('a', [3, 4]), x('w', [5, 4]), x('bias', [5])], { transB: 1 }),
  },
  { name: 'Gemm transB=1 without bias', op: 'Gemm', build: ({ g, x }) => g.op('Gemm', [x('a', [3, 4]), x('w', [5, 4])], { transB: 1 }) },
  { name: 'Gemm transB=0', op: 'Gemm', build: ({ g, x }) => g.op('Gemm', [x('a', [3, 4]), x('w', [4, 5])]) },
  {
    name: 'Gemm transB=0 with bias [1,out], frozen weight',
    op: 'Gemm',
    build: ({ g, x }) => g.op('Gemm', [x('a', [3, 4]), x('w', [4, 5], { fixed: true }), x('bias', [1, 5])], { transB: 0 }),
  },
  {
    name: 'MatMul 4-D batched',
    op: 'MatMul',
    build: ({ g, x }) => g.op('MatMul', [x('a', [2, 3, 2, 4]), x('b', [2, 3, 4, 3])]),
  },
  {
    name: 'MatMul broadcast batch dims [2,1,..] x [1,3,..]',
    op: 'MatMul',
    build: ({ g, x }) => g.op('MatMul', [x('a', [2, 1, 2, 4]), x('b', [1, 3, 4, 3])]),
  },
  {
    name: 'MatMul 4-D x 2-D',
    op: 'MatMul',
    build: ({ g, x }) => g.op('MatMul', [x('a', [2, 3, 2, 4]), x('b', [4, 3])]),
  },

  // shape ops
  {
    name: 'Slice axis 2 [1, 5)',
    op: 'Slice',
    build: ({ g, x }) => g.op('Slice', [x('x', [2, 3, 6]), g.ints([1]), g.ints([5]), g.ints([2])]),
  },
  {
    name: 'Slice negative axis, negative start, end MAX_SAFE_INTEGER',
    op: 'Slice',
    build: ({ g, x }) => g.op('Slice', [x('x', [2, 3, 4]), g.ints([-2]), g.ints([SAFE_END]), g.ints([-2])]),
  },
  {
    name: 'Slice two axes (0 and -1), negative end, explicit steps',
    op: 'Slice',
    build: ({ g, x }) => g.op('Slice', [x('x', [3, 2, 5]), g.ints([1, 1]), g.ints([3, -1]), g.ints([0, -1]), g.ints([1, 1])]),
  },
  {
    // the empty slice's gradient must still have x's shape to be added to the direct path's
    name: 'Slice to an empty tensor (start > end), plus a direct path',
    op: 'Slice',
    build: ({ g, x }) => {
      const v = x('x', [2, 3]);
      const empty = g.op('Slice', [v, g.ints([2]), g.ints([1]), g.ints([1])]);
      return g.op('Add', [g.op('Concat', [empty, v], { axis: 1 }), v]);
    },
  },
  {
    name: 'Concat of 2 on the last axis',
    op: 'Concat',
    build: ({ g, x }) => g.op('Concat', [x('a', [2, 3, 2]), x('b', [2, 3, 3])], { axis: -1 }),
  },
  {
    name: 'Concat of 3 on the last axis, middle one frozen',
    op: 'Concat',
    build: ({ g, x }) => g.op('Concat', [x('a', [2, 3, 1]), x('b', [2, 3, 2], { fixed: true }), x('c', [2, 3, 3])], { axis: -1 }),
  },
  {
    name: 'Concat of 3 on axis 0',
    op: 'Concat',
    build: ({ g, x }) => g.op('Concat', [x('a', [1, 2, 3]), x('b', [2, 2, 3]), x('c', [1, 2, 3])], { axis: 0 }),
  },
  {
    name: 'Gather axis 0, repeated 2-D indices',
    op: 'Gather',
    build: ({ g, x }) => g.op('Gather', [x('table', [5, 3]), g.constant('idx', 'int64', [2, 3], [1, 4, 1, 0, 1, 4])], { axis: 0 }),
  },
  {
    name: 'Gather axis 0 (default), repeated 1-D indices on a 3-D tensor',
    op: 'Gather',
    build: ({ g, x }) => g.op('Gather', [x('rows', [4, 2, 3]), g.ints([2, 0, 2, 2])]),
  },
  {
    name: 'Gather axis 0, negative and repeated indices',
    op: 'Gather',
    build: ({ g, x }) => g.op('Gather', [x('table', [4, 3]), g.ints([-1, 0, 3, -1])], { axis: 0 }),
  },
  { name: 'Softmax axis -1', op: 'Softmax', build: ({ g, x }) => g.op('Softmax', [x('x', [2, 3, 4])], { axis: -1 }) },
  {
    name: 'ReduceMean axes [-1] keepdims 1',
    op: 'ReduceMean',
    build: ({ g, x }) => g.op('ReduceMean', [x('x', [2, 3, 4]), g.ints([-1])], { keepdims: 1 }),
  },
  {
    name: 'ReduceSum axes [-1] keepdims 1',
    op: 'ReduceSum',
    build: ({ g, x }) => g.op('ReduceSum', [x('x', [2, 3, 4]), g.ints([-1])], { keepdims: 1 }),
  },
  {
    name: 'ReduceSum axes [0, 2] keepdims 1',
    op: 'ReduceSum',
    build: ({ g, x }) => g.op('ReduceSum', [x('x', [2, 3, 4]), g.ints([0, 2])], { keepdims: 1 }),
  },
  { name: 'Reshape [2,3,4] -> [0,-1]', op: 'Reshape', build: ({ g, x }) => g.op('Reshape', [x('x', [2, 3, 4]), g.ints([0, -1])]) },
  { name: 'Squeeze axis 1', op: 'Squeeze', build: ({ g, x }) => g.op('Squeeze', [x('x', [2, 1, 4]), g.ints([1])]) },
  { name: 'Unsqueeze axes [0, -1]', op: 'Unsqueeze', build: ({ g, x }) => g.op('Unsqueeze', [x('x', [2, 3]), g.ints([0, -1])]) },
  {
    name: 'Transpose perm [1,2,0] (not its own inverse)',
    op: 'Transpose',
    build: ({ g, x }) => g.op('Transpose', [x('x', [2, 3, 4])], { perm: [1, 2, 0] }),
  },
  {
    name: 'Transpose perm [0,2,1,3]',
    op: 'Transpose',
    build: ({ g, x }) => g.op('Transpose', [x('x', [2, 3, 2, 2])], { perm: [0, 2, 1, 3] }),
  },
  {
    // inputs on multiples of 2^-8 and a step of 2^-6 keep x +- h exact in float16, so only r's rounding remains
    name: 'Cast float32 -> float16 -> float32',
    op: 'Cast',
    tol: 3e-2,
    h: 2 ** -6,
    build: ({ g, x }) => g.op('Cast', [g.op('Cast', [x('x', [2, 3, 4], { values: 'fp16' })], { to: 10 })], { to: 1 }),
  },

  // composites: a value used by several nodes, and the decoder's own patterns
  {
    name: 'fan-out: x * x',
    build: ({ g, x }) => {
      const v = x('x', [2, 3, 4]);
      return g.op('Mul', [v, v]);
    },
  },
  {
    name: 'fan-out: sigmoid(x) + x * w',
    build: ({ g, x }) => {
      const v = x('x', [2, 3, 4]);
      return g.op('Add', [g.op('Sigmoid', [v]), g.op('Mul', [v, x('w', [4])])]);
    },
  },
  {
    name: 'RMSNorm as the decoder writes it',
    build: ({ g, x }) => {
      const v = x('x', [2, 3, 4]);
      const variance = g.op('ReduceMean', [g.op('Mul', [v, v]), g.ints([-1])], { keepdims: 1 });
      const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(1e-6)])])]);
      return g.op('Mul', [x('w', [4]), g.op('Mul', [v, inv])]);
    },
  },
  {
    name: 'RoPE rotate-half as the decoder writes it',
    build: ({ g, x }) => {
      const v = x('x', [2, 3, 4]);
      const x1 = g.op('Slice', [v, g.ints([0]), g.ints([2]), g.ints([-1])]);
      const x2 = g.op('Slice', [v, g.ints([2]), g.ints([4]), g.ints([-1])]);
      const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
      return g.op('Add', [g.op('Mul', [v, x('cos', [3, 4], { fixed: true })]), g.op('Mul', [rotated, x('sin', [3, 4], { fixed: true })])]);
    },
  },
  {
    name: 'masked attention: softmax(where(mask, q k^T * s, -1e9)) v',
    build: ({ g, x, bool }) => {
      const q = x('q', [1, 2, 3, 4]);
      const k = x('k', [1, 2, 3, 4]);
      const raw = g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]);
      const scores = g.op('Mul', [raw, g.scalar(0.5)]);
      const causal = bool([1, 1, 3, 3], [1, 0, 0, 1, 1, 0, 1, 1, 1]);
      const probs = g.op('Softmax', [g.op('Where', [causal, scores, g.scalar(-1e9)])], { axis: -1 });
      return g.op('MatMul', [probs, x('v', [1, 2, 3, 4])]);
    },
  },
  {
    name: 'rows gathered from a reshaped activation, then a linear layer',
    build: ({ g, x }) => {
      const flat = g.op('Reshape', [x('h', [2, 3, 4]), g.ints([-1, 4])]);
      const rows = g.op('Gather', [flat, g.constant('rows', 'int64', [4], [5, 1, 5, 0])], { axis: 0 });
      return g.op('Gemm', [rows, x('w', [3, 4])], { transB: 1 });
    },
  },
];

/** alternating true/false with some irregularity, so both branches of Where carry gradient */
function pattern(n: number): number[] {
  return Array.from({ length: n }, (_, i) => ((i * 7) % 3 === 0 ? 0 : 1));
}

function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function draw(random: () => number, values: Values): number {
  const n = random();
  if (values === 'positive') return 1 + Math.abs(n) / 2;
  if (values === 'fp16') return Math.round(Math.max(-3, Math.min(3, n)) * 256) / 256;
  return n;
}

interface Input {
  name: string;
  dims: number[];
  data: Float32Array;
  wrt: boolean;
}

interface Built {
  graph: Graph;
  inputs: Input[];
  /** ops of the case's own nodes, before the objective and the gradients were appended */
  forwardOps: string[];
  y: string;
  r: Float32Array;
  yDims: number[];
}

/** The case's forward graph plus L = sum(y * r) as output `loss` and each wanted gradient as `grad:<input>`. */
function buildCase(c: Case): Built {
  const random = normalSampler(seedOf(c.name));
  const g = new Graph('gradcheck');
  const inputs: Input[] = [];
  const ctx: CaseContext = {
    g,
    x: (name, dims, options = {}) => {
      const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).map(() => draw(random, options.values ?? 'normal'));
      inputs.push({ name, dims, data, wrt: !options.fixed });
      return g.input(name, 'float32', dims);
    },
    bool: (dims, values) => g.constant('cond', 'bool', dims, values),
  };
  const y = c.build(ctx);
  const forwardOps = g.nodes.map((n) => n.op);
  const yDims = inferShapes(g).shape(y);
  const r = new Float32Array(yDims.reduce((a, b) => a * b, 1)).map(() => random());
  g.input('r', 'float32', yDims);
  g.output('loss', g.op('ReduceSum', [g.op('Mul', [y, 'r'])], { keepdims: 0 }), 'float32', []);
  const wanted = inputs.filter((i) => i.wrt);
  const grads = appendBackward(
    g,
    inferShapes(g),
    new Map([[y, 'r']]),
    wanted.map((i) => i.name),
  );
  for (const i of wanted) g.output(`grad:${i.name}`, grads.get(i.name)!, 'float32', i.dims);
  return { graph: g, inputs, forwardOps, y, r, yDims };
}

let modelCount = 0;

async function sessionFor(g: Graph): Promise<ort.InferenceSession> {
  const file = path.join(DIR, `case${modelCount++}.onnx`);
  fs.writeFileSync(file, g.serialize());
  return ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 3 });
}

interface Check {
  maxAbsError: number;
  maxRatio: number;
}

async function gradcheck(c: Case): Promise<Check> {
  const built = buildCase(c);
  if (c.op) assert.ok(built.forwardOps.includes(c.op), `case "${c.name}" has no ${c.op} node`);
  const session = await sessionFor(built.graph);
  const feeds: Record<string, ort.Tensor> = { r: new ort.Tensor('float32', built.r, built.yDims) };
  for (const i of built.inputs) feeds[i.name] = new ort.Tensor('float32', i.data, i.dims);

  const outputs = await session.run(feeds);
  const loss = async (name: string, data: Float32Array, dims: number[]): Promise<number> => {
    const out = await session.run({ ...feeds, [name]: new ort.Tensor('float32', data, dims) }, ['loss']);
    return Number((out.loss.data as Float32Array)[0]);
  };

  const tol = c.tol ?? 2e-3;
  const h = c.h ?? 1e-2;
  let maxAbsError = 0;
  let maxRatio = 0;
  for (const input of built.inputs.filter((i) => i.wrt)) {
    const grad = outputs[`grad:${input.name}`];
    assert.deepEqual([...grad.dims], input.dims, `${c.name}: gradient of ${input.name} has dims [${grad.dims}]`);
    const analytic = grad.data as Float32Array;
    assert.ok(
      analytic.some((v) => Math.abs(v) > 1e-3),
      `${c.name}: gradient of ${input.name} is trivially zero`,
    );
    const perturbed = Float32Array.from(input.data);
    for (let e = 0; e < perturbed.length; e++) {
      const x0 = input.data[e];
      const [plus, minus] = [Math.fround(x0 + h), Math.fround(x0 - h)];
      perturbed[e] = plus;
      const lPlus = await loss(input.name, perturbed, input.dims);
      perturbed[e] = minus;
      const lMinus = await loss(input.name, perturbed, input.dims);
      perturbed[e] = x0;
      const numeric = (lPlus - lMinus) / (plus - minus);
      const error = Math.abs(analytic[e] - numeric);
      const bound = tol * Math.max(1, Math.abs(numeric));
      maxAbsError = Math.max(maxAbsError, error);
      maxRatio = Math.max(maxRatio, error / bound);
      assert.ok(
        error <= bound,
        `${c.name}: d loss / d ${input.name}[${e}] analytic ${analytic[e]} vs numeric ${numeric} (|diff| ${error.toExponential(2)} > ${bound.toExponential(2)})`,
      );
    }
  }
  await session.release();
  return { maxAbsError, maxRatio };
}

for (const c of CASES) {
  test(`gradient of ${c.name} matches central differences`, async (t) => {
    const { maxAbsError, maxRatio } = await gradcheck(c);
    t.diagnostic(`max |analytic - numeric| ${maxAbsError.toExponential(2)} (${(100 * maxRatio).toFixed(1)}% of the tolerance)`);
  });
}

test('every gradient rule has a finite-difference case', () => {
  const covered = new Set(CASES.flatMap((c) => (c.op ? [c.op] : [])));
  const missing = Object.keys(GRADIENT_RULES).filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `gradient rules without a case: ${missing.join(', ')}`);
  const unknown = [...covered].filter((op) => !(op in GRADIENT_RULES));
  assert.deepEqual(unknown, [], `cases for ops that have no rule: ${unknown.join(', ')}`);
});

test('a value used twice gets the sum of both contributions (d(x*x) = 2x)', async () => {
  const built = buildCase({
    name: 'x*x',
    build: ({ g, x }) => {
      const v = x('x', [2, 3]);
      return g.op('Mul', [v, v]);
    },
  });
  const session = await sessionFor(built.graph);
  const x = built.inputs[0];
  const out = await session.run({ x: new ort.Tensor('float32', x.data, x.dims), r: new ort.Tensor('float32', built.r, built.yDims) });
  const grad = out['grad:x'].data as Float32Array;
  grad.forEach((v, i) => assert.ok(Math.abs(v - 2 * x.data[i] * built.r[i]) <= 1e-6 * (1 + Math.abs(v)), `element ${i}: ${v}`));
  await session.release();
});

test('an embedding gradient over many repeated tokens is their exact sum, the same every run', async () => {
  // large enough that ONNX Runtime runs the scatter on several threads: ScatterND's reduction="add" then loses
  // some of the updates to a repeated row (the rule sums per distinct token before scattering)
  const [V, C, N] = [64, 256, 4096];
  const ids = Array.from({ length: N }, (_, i) => (i * 7) % V);
  const built = buildCase({ name: 'embedding', build: ({ g, x }) => g.op('Gather', [x('table', [V, C]), g.constant('ids', 'int64', [N], ids)]) });
  const session = await sessionFor(built.graph);
  const table = built.inputs[0];
  const expected = new Float64Array(V * C);
  ids.forEach((id, n) => {
    for (let c = 0; c < C; c++) expected[id * C + c] += built.r[n * C + c];
  });
  const feeds = { table: new ort.Tensor('float32', table.data, table.dims), r: new ort.Tensor('float32', built.r, built.yDims) };
  const first = (await session.run(feeds))['grad:table'].data as Float32Array;
  let error = 0;
  first.forEach((v, i) => {
    error = Math.max(error, Math.abs(v - expected[i]));
  });
  assert.ok(error < 1e-4, `largest error against the float64 sum: ${error}`);
  for (let run = 0; run < 5; run++) assert.deepEqual((await session.run(feeds))['grad:table'].data, first, `run ${run + 2} differs from the first`);
  await session.release();
});

test('appendBackward names the op that has no gradient rule on the path to the loss', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [2, 3]);
  const y = g.op('Mul', [g.op('Cos', [x]), g.input('w', 'float32', [2, 3])]);
  g.input('dy', 'float32', [2, 3]);
  assert.throws(() => appendBackward(g, inferShapes(g), new Map([[y, 'dy']]), [x]), /no gradient rule for Cos/);
});

test('rules refuse the attribute settings they are not written for, rather than return a wrong gradient', () => {
  const refuses = (build: (g: Graph, x: string) => string, message: RegExp) => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [3, 4]);
    const y = build(g, x);
    g.input('dy', 'float32', inferShapes(g).shape(y));
    assert.throws(() => appendBackward(g, inferShapes(g), new Map([[y, 'dy']]), [x]), message);
  };
  refuses((g, x) => g.op('Gemm', [x, g.input('w', 'float32', [5, 4])], { transB: 1, alpha: { float: 2 } }), /alpha = beta = 1/);
  refuses((g, x) => g.op('Gemm', [x, g.input('w', 'float32', [4, 5]), g.input('b', 'float32', [5])], { beta: { float: 0.5 } }), /alpha = beta = 1/);
  refuses((g, x) => g.op('Gemm', [x, g.input('w', 'float32', [3, 5])], { transA: 1 }), /transA=0/);
  refuses((g, x) => g.op('Softmax', [x], { axis: 0 }), /last axis/);
  refuses((g, x) => g.op('ReduceSum', [x, g.ints([-1])], { keepdims: 0 }), /keepdims=1/);
  refuses((g, x) => g.op('Slice', [x, g.ints([0]), g.ints([4]), g.ints([1]), g.ints([2])]), /step 1/);
  refuses((g, x) => g.op('Gather', [x, g.ints([0, 1])], { axis: 1 }), /axis 0/);
});

test('ops off the path need no rule, and a parameter that does not reach the loss is an error', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [2, 3]);
  const frozen = g.op('Cos', [g.input('c', 'float32', [2, 3])]);
  const unused = g.input('unused', 'float32', [2, 3]);
  g.op('Sigmoid', [unused]);
  const y = g.op('Mul', [frozen, x]);
  g.input('dy', 'float32', [2, 3]);
  const before = g.nodes.length;
  const grads = appendBackward(g, inferShapes(g), new Map([[y, 'dy']]), [x]);
  assert.ok(grads.has(x));
  assert.ok(g.nodes.slice(before).every((n) => n.op !== 'Cos' && n.op !== 'Sigmoid'));
  assert.throws(() => appendBackward(g, inferShapes(g), new Map([[y, 'dy']]), [x, unused]), /unused does not reach the loss/);
});
