import type { ModelConfig } from '../checkpoint/config';
import { Graph, type Dim, type ElemType } from '../onnx/graph';
import { declareInterventionInputs, interventionHooks } from '../interventions/interventions';
import { PathPatchingTaps, pathPatchingTail } from '../localisation/pathPatchingTail';
import { Decoder, type WeightBinder } from '../model/decoder';
import { decodeLoop } from '../model/decodeLoop';
import { PatternReader, ZReader } from '../model/readers';
import type { GraphDtype } from '../model/weightFile';

/**
 * The one graph every inference job of a model runs, so that a session, and one copy of the weights, serves them
 * all: a forward pass over the prompts, logits and log-probabilities at the positions asked for, greedy decoding
 * in a Loop, and, in an instrumented branch, interventions (patching, knockout, holding) and what is read along the
 * way (head outputs, an attention pattern, path patching of every head). An If on `instrumented` chooses the
 * branch, so a plain run computes nothing of the instrumentation: ONNX Runtime runs every node of a graph whatever
 * outputs are fetched, and only an If or a Loop leaves work undone.
 *
 * Inputs:
 * - `input_ids`, `attention_mask`, `position_ids` [B, T]: the prompts, left-padded (runtime/batch.ts)
 * - `logit_rows` [M]: flattened positions b * T + t whose next-token distributions are computed
 * - `logprob_ids` [M, J]: ids whose log-probabilities are returned at each of those positions
 * - `decode_steps` int64 scalar and `stop_ids` [E]: greedy tokens after the first (which is the argmax at the logit
 *   rows, so generation reads the last positions, M = B), and the ids that stop a row
 * - `instrumented` bool scalar, and for the instrumented branch: every intervention's inputs (interventions/),
 *   `z_rows` [Mz], `pattern_head` [2] (layer, head), `path_patch` bool scalar with `path_targets` [K]
 * Outputs:
 * - `logits` [M, V], `picked_logits` and `logprobs` [M, J] (the logits and log-probabilities of the ids asked for),
 *   float32; `next_token` [M], `generated` [S, B] int64
 * - `z.{l}` [Mz, H*D] float32 per layer, `pattern` [T, K] (row 0, the chosen head), `path_patched` [L*H, K]:
 *   empty unless instrumented (and, for the last, `path_patch`)
 */
export const INFERENCE_INPUTS = {
  ids: 'input_ids', mask: 'attention_mask', positions: 'position_ids', logitRows: 'logit_rows', logprobIds: 'logprob_ids',
  decodeSteps: 'decode_steps', stopIds: 'stop_ids', instrumented: 'instrumented', zRows: 'z_rows', patternHead: 'pattern_head',
  pathPatch: 'path_patch', pathTargets: 'path_targets',
} as const;

export const INFERENCE_OUTPUTS = {
  logits: 'logits', pickedLogits: 'picked_logits', logprobs: 'logprobs', nextToken: 'next_token', generated: 'generated', pattern: 'pattern', pathPatched: 'path_patched',
} as const;

export function zOutput(layer: number): string {
  return `z.${layer}`;
}

interface Output {
  name: string;
  elemType: ElemType;
  dims: Dim[];
}

export function buildInferenceGraph(config: ModelConfig, weights: WeightBinder, dtype: GraphDtype, padId: number): Graph {
  const g = new Graph('pinpoint_inference');
  const I = INFERENCE_INPUTS;
  g.input(I.ids, 'int64', ['batch', 'new']);
  g.input(I.mask, 'int64', ['batch', 'new']);
  g.input(I.positions, 'int64', ['batch', 'new']);
  g.input(I.logitRows, 'int64', ['reads']);
  g.input(I.logprobIds, 'int64', ['reads', 'ids']);
  g.input(I.decodeSteps, 'int64', []);
  g.input(I.stopIds, 'int64', ['stops']);
  g.input(I.instrumented, 'bool', []);
  g.input(I.zRows, 'int64', ['z_reads']);
  g.input(I.patternHead, 'int64', [2]);
  g.input(I.pathPatch, 'bool', []);
  g.input(I.pathTargets, 'int64', ['targets']);
  declareInterventionInputs(g, config, dtype);
  const outputs = graphOutputs(config);
  const branch = (name: string, instrumented: boolean) => new Branch(g.subgraph(name), config, weights, dtype, padId).build(instrumented, outputs);
  g.opMulti('If', [I.instrumented], outputs.map((o) => o.name), {
    then_branch: { graph: branch('instrumented', true) },
    else_branch: { graph: branch('plain', false) },
  });
  for (const o of outputs) g.output(o.name, o.name, o.elemType, o.dims);
  return g;
}

function graphOutputs(c: ModelConfig): Output[] {
  const O = INFERENCE_OUTPUTS;
  return [
    { name: O.logits, elemType: 'float32', dims: ['reads', c.vocabSize] },
    { name: O.pickedLogits, elemType: 'float32', dims: ['reads', 'ids'] },
    { name: O.logprobs, elemType: 'float32', dims: ['reads', 'ids'] },
    { name: O.nextToken, elemType: 'int64', dims: ['reads'] },
    { name: O.generated, elemType: 'int64', dims: ['steps', 'batch'] },
    { name: O.pattern, elemType: 'float32', dims: ['queries', 'keys'] },
    { name: O.pathPatched, elemType: 'float32', dims: ['patched', 'targets'] },
    ...Array.from({ length: c.numLayers }, (_, l): Output => ({ name: zOutput(l), elemType: 'float32', dims: ['z_reads', c.numHeads * c.headDim] })),
  ];
}

/** One branch of the If: the whole forward pass and decoding, with or without the instrumentation. */
class Branch {
  constructor(
    private readonly g: Graph,
    private readonly config: ModelConfig,
    private readonly weights: WeightBinder,
    private readonly dtype: GraphDtype,
    private readonly padId: number,
  ) {}

  build(instrumented: boolean, outputs: Output[]): Graph {
    const { g, config: c } = this;
    const I = INFERENCE_INPUTS;
    const z = new ZReader(I.zRows);
    const pattern = new PatternReader(I.patternHead);
    const taps = new PathPatchingTaps();
    const hooks = instrumented ? [...interventionHooks(false), z, pattern, ...taps.hooks()] : [];
    const decoder = new Decoder(c, g, this.weights, this.dtype, hooks);
    const pass = decoder.forward({ ids: I.ids, mask: I.mask, positions: I.positions });
    const logits = decoder.logitsAt(pass.residual, I.logitRows); // [M, V]
    const next = g.op('ArgMax', [logits], { axis: -1, keepdims: 0 });
    const generated = decodeLoop(g, { cache: pass.cache, first: next, mask: I.mask }, {
      config: c, weights: this.weights, dtype: this.dtype, hooks: instrumented ? interventionHooks(true) : [],
      padId: this.padId, steps: I.decodeSteps, stopIds: I.stopIds,
    });
    const none = (width: number) => g.constant('none', 'float32', [0, width], []);
    const picked = g.op('GatherElements', [logits, I.logprobIds], { axis: 1 }); // [M, J]
    const values = [
      logits, picked, logprobsAt(g, logits, picked), next, generated,
      instrumented ? pattern.pattern : none(0),
      instrumented ? this.pathPatching(taps) : none(0),
      ...(instrumented ? z.values : Array.from({ length: c.numLayers }, () => none(c.numHeads * c.headDim))),
    ];
    outputs.forEach((o, i) => g.output(g.fresh(o.name), values[i], o.elemType, o.dims));
    return g;
  }

  /** path patching's tail when `path_patch` is set, else nothing: an If of its own, as it costs L*H rows of MLPs. */
  private pathPatching(taps: PathPatchingTaps): string {
    const { g, config: c } = this;
    const tail = g.subgraph('path_patching');
    tail.output(tail.fresh('patched'), pathPatchingTail(new Decoder(c, tail, this.weights, this.dtype), taps, INFERENCE_INPUTS.pathTargets), 'float32', ['patched', 'targets']);
    const skip = g.subgraph('no_path_patching');
    skip.output(skip.fresh('patched'), skip.constant('none', 'float32', [0, 0], []), 'float32', ['patched', 'targets']);
    const [patched] = g.opMulti('If', [INFERENCE_INPUTS.pathPatch], [g.fresh('path_patched')], { then_branch: { graph: tail }, else_branch: { graph: skip } });
    return patched;
  }
}

/** log softmax(logits) at the picked logits [M, J], in float32 with the max subtracted first. */
function logprobsAt(g: Graph, logits: string, picked: string): string {
  const max = g.op('ReduceMax', [logits, g.ints([-1])], { keepdims: 1 }); // [M, 1]
  const logSum = g.op('Log', [g.op('ReduceSum', [g.op('Exp', [g.op('Sub', [logits, max])]), g.ints([-1])], { keepdims: 1 })]);
  return g.op('Sub', [picked, g.op('Add', [max, logSum])]);
}
