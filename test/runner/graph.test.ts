/* eslint-disable @typescript-eslint/no-explicit-any -- the decoded protobuf is untyped; each field is checked below */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph, encodeTensor } from '../../native-runner/src/onnx/graph';
import { ModelProto } from '../../native-runner/src/onnx/schema';

test('a graph serialises to a ModelProto with its nodes, attributes, inputs, outputs and initializers', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', ['batch', 4]);
  g.initializer('w', { elemType: 'float32', dims: [3, 4], location: 'weights.bin', offset: 128, length: 48 });
  const y = g.op('Gemm', [x, 'w'], { transB: 1 });
  g.output('y', g.op('Softmax', [y], { axis: -1 }), 'float32', ['batch', 3]);
  g.constant('c', 'int64', [2], [1, -1]);

  const decoded = ModelProto.toObject(ModelProto.decode(g.serialize()), { longs: Number, bytes: Array }) as any;
  assert.equal(decoded.opset_import[0].version, 21);
  // the Softmax writes the output itself: a computed value becomes an output by taking its name
  assert.deepEqual(
    decoded.graph.node.map((n: any) => n.op_type),
    ['Gemm', 'Softmax'],
  );
  assert.deepEqual(decoded.graph.node[1].output, ['y']);
  assert.deepEqual(decoded.graph.node[0].attribute[0], { name: 'transB', type: 2, i: 1 });
  assert.equal(decoded.graph.node[1].attribute[0].i, -1);
  assert.deepEqual(decoded.graph.input[0].type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_value: 4 }]);
  assert.equal(decoded.graph.output[0].name, 'y');
  const w = decoded.graph.initializer.find((t: any) => t.name === 'w');
  assert.equal(w.data_location, 1);
  assert.deepEqual(w.external_data, [
    { key: 'location', value: 'weights.bin' },
    { key: 'offset', value: '128' },
    { key: 'length', value: '48' },
  ]);
  const c = decoded.graph.initializer.find((t: any) => t.name.startsWith('c_'));
  assert.deepEqual(c.raw_data, [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
});

test('constants must match their shape, and names are never reused', () => {
  assert.throws(() => encodeTensor('float32', [2, 2], [1, 2, 3]), /shape \[2,2\] given 3 values/);
  const g = new Graph('t');
  g.initializer('w', encodeTensor('float32', [1], [1]));
  assert.throws(() => g.initializer('w', encodeTensor('float32', [1], [1])), /defined twice/);
  assert.notEqual(g.fresh('a'), g.fresh('a'));
});

test('a value exposed as an output is renamed, and references to it follow; inputs and repeats go through an Identity', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [2]);
  const y = g.op('Neg', [x]);
  const branch = g.subgraph('branch');
  branch.output(branch.fresh('abs'), branch.op('Abs', [y]), 'float32', [2]);
  g.opMulti('If', [g.constant('c', 'bool', [], [1])], [g.fresh('if')], { then_branch: { graph: branch }, else_branch: { graph: branch } });
  g.output('out', y, 'float32', [2]);
  assert.equal(g.resolve(y), 'out');
  const later = g.op('Exp', [y]);
  g.output('again', y, 'float32', [2]);
  g.output('echo', x, 'float32', [2]);
  assert.deepEqual(
    g.nodes.filter((n) => n.op !== 'If').map((n) => [n.op, n.inputs, n.outputs]),
    [
      ['Neg', [x], ['out']],
      ['Exp', ['out'], [later]],
      ['Identity', ['out'], ['again']],
      ['Identity', [x], ['echo']],
    ],
  );
  assert.deepEqual(branch.nodes[0].inputs, ['out'], 'a subgraph reading the value reads it by its new name');
});
