import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { UsageError } from '../../native-runner/src/cliOptions';
import { expectedTensorShapes } from '../../native-runner/src/checkpoint/checkpoint';
import { parseConfig } from '../../native-runner/src/checkpoint/config';
import { ModelTokenizer } from '../../native-runner/src/checkpoint/tokenizer';
import { Graph } from '../../native-runner/src/onnx/graph';
import { adamwFeeds, appendAdamW, clipByGlobalNorm, declareAdamWInputs, type AdamWHyper } from '../../native-runner/src/training/adamw';
import { DataError, readConversations } from '../../native-runner/src/training/conversations';
import { bucket, IGNORE_INDEX, labelledCount, packBatch, type Example } from '../../native-runner/src/training/lossBatch';
import { readBlock, trainableSlices, writeBlock, type ParamSlice, type TuneSpec } from '../../native-runner/src/training/parameters';
import { learningRate, type Schedule } from '../../native-runner/src/training/schedule';
import { parseHeads } from '../../native-runner/src/training/tuneCommand';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';

/**
 * The pieces of training against formulas written out here: the training graph's torch.optim.AdamW and gradient
 * clipping, transformers' learning-rate schedules, which blocks each tuning mode trains, how conversations become labelled
 * examples and how examples become a loss batch, and how --heads is read.
 */

const work = tempDir('training-units');
after(() => fs.rmSync(work, { recursive: true, force: true }));

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

// ---- AdamW ----

const H: AdamWHyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-3, weightDecay: 0.5 };

/** torch.optim.AdamW, single-tensor path, in float64: returns the parameters after each step. */
function adamwByHand(p0: number[], grads: number[][], h: AdamWHyper, decay: boolean): number[][] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const history: number[][] = [];
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      if (decay) p[i] *= 1 - h.lr * h.weightDecay; // param.mul_(1 - lr * weight_decay)
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
      const stepSize = h.lr / (1 - h.beta1 ** t);
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - h.beta2 ** t) + h.eps;
      p[i] -= stepSize * (m[i] / denom);
    }
    history.push([...p]);
  });
  return history;
}

/** The training graph's optimizer alone, on one block of n elements: param, grad, m, v in; param, m, v out. */
async function optimizerSession(h: AdamWHyper, n: number, decays: boolean): Promise<ort.InferenceSession> {
  const g = new Graph('adamw');
  const [param, grad, m, v] = ['param', 'grad', 'm', 'v'].map((name) => g.input(name, 'float32', [n]));
  declareAdamWInputs(g);
  const {
    clipped: [clippedGrad],
  } = clipByGlobalNorm(g, [grad]);
  const next = appendAdamW(g, h, { param, grad: clippedGrad, m, v, decays });
  g.output('param_out', next.param, 'float32', [n]);
  g.output('m_out', next.m, 'float32', [n]);
  g.output('v_out', next.v, 'float32', [n]);
  return ort.InferenceSession.create(g.serialize());
}

async function adamwSteps(h: AdamWHyper, p0: number[], grads: number[][], decays: boolean, lr = h.lr): Promise<number[][]> {
  const n = p0.length;
  const session = await optimizerSession(h, n, decays);
  const tensor = (values: Float32Array) => new ort.Tensor('float32', values, [n]);
  const state: Record<'param' | 'm' | 'v', Float32Array> = { param: Float32Array.from(p0), m: new Float32Array(n), v: new Float32Array(n) };
  const history: number[][] = [];
  for (const [k, g] of grads.entries()) {
    const feeds = {
      param: tensor(state.param),
      grad: tensor(Float32Array.from(g)),
      m: tensor(state.m),
      v: tensor(state.v),
      ...adamwFeeds(h, lr, k + 1, 0),
    };
    const out = await session.run(feeds);
    state.param = out.param_out.data as Float32Array;
    state.m = out.m_out.data as Float32Array;
    state.v = out.v_out.data as Float32Array;
    history.push([...state.param]);
  }
  return history;
}

for (const decays of [true, false]) {
  test(`AdamW in the graph: one and two steps equal torch.optim.AdamW's formulas (weight decay ${decays ? 'on' : 'off'})`, async () => {
    const p0 = [0.5, -0.3, 1.2, 0, 2];
    // gradients near eps, so that where eps goes matters; one zero gradient
    const grads = [
      [0.1, -0.002, 0.0005, 0.3, 0],
      [-0.05, 0.004, 0.2, -0.3, 0],
    ];
    const expected = adamwByHand(p0, grads, H, decays);
    const steps = await adamwSteps(H, p0, grads, decays);
    for (const [k, params] of steps.entries()) {
      for (let i = 0; i < p0.length; i++) close(params[i], expected[k][i], 2e-6, `step ${k + 1} element ${i}`);
    }
    // a zero gradient moves a parameter only by the decay
    close(steps[1][4], decays ? 2 * (1 - H.lr * H.weightDecay) ** 2 : 2, 1e-6, 'decay only');
    // the decay is decoupled, applied before the step: (p - step) * (1 - lr wd) would be off by step * lr * wd
    if (decays) {
      const coupled = adamwByHand(p0, grads.slice(0, 1), { ...H, weightDecay: 0 }, false)[0].map((x) => x * (1 - H.lr * H.weightDecay));
      assert.ok(Math.abs(coupled[0] - expected[0][0]) > 1e-3);
    }
  });
}

test('AdamW uses the learning rate it is given for the step, not the hyper-parameter', async () => {
  const [[param]] = await adamwSteps(H, [1], [[1]], true, 0.01);
  close(param, adamwByHand([1], [[1]], { ...H, lr: 0.01 }, true)[0][0], 1e-7, 'lr 0.01');
});

test('global-norm clipping scales every gradient to the max norm and reports the norm before clipping', async () => {
  const g = new Graph('clip');
  const grads = [g.input('a', 'float32', [2]), g.input('b', 'float32', [2])];
  declareAdamWInputs(g);
  const { norm, clipped } = clipByGlobalNorm(g, grads);
  g.output('norm', norm, 'float32', []);
  clipped.forEach((x, i) => g.output(`clipped${i}`, x, 'float32', [2]));
  const session = await ort.InferenceSession.create(g.serialize());
  const run = async (a: number[], b: number[], maxNorm: number) => {
    const out = await session.run({
      a: new ort.Tensor('float32', Float32Array.from(a), [2]),
      b: new ort.Tensor('float32', Float32Array.from(b), [2]),
      ...adamwFeeds(H, H.lr, 1, maxNorm),
    });
    return { norm: (out.norm.data as Float32Array)[0], clipped: [...(out.clipped0.data as Float32Array), ...(out.clipped1.data as Float32Array)] };
  };
  const big = await run([3, 4], [0, 12], 6.5);
  close(big.norm, 13, 1e-6, 'pre-clip norm');
  const scale = 6.5 / (13 + 1e-6);
  assert.deepEqual(
    big.clipped.map((x) => Math.round(x * 1e5) / 1e5),
    [3, 4, 0, 12].map((x) => Math.round(x * scale * 1e5) / 1e5),
  );
  close(Math.hypot(...big.clipped), 6.5, 1e-5, 'clipped norm');
  const small = await run([0.3, -0.4], [0, 0], 1);
  close(small.norm, 0.5, 1e-7, 'norm under the limit');
  assert.deepEqual(small.clipped, [Math.fround(0.3), Math.fround(-0.4), 0, 0], 'left alone under the limit');
  const unclipped = await run([3, 4], [0, 12], 0);
  assert.deepEqual(unclipped.clipped, [3, 4, 0, 12], 'no clipping when no max norm is given');
});

// ---- learning-rate schedules ----

/** transformers.optimization's lr_lambda functions (num_cycles 0.5; polynomial lr_end, power), times the peak. */
function transformersLr(kind: Schedule['kind'], peak: number, step: number, warmup: number, total: number, lrEnd = 1e-7, power = 1): number {
  if (kind === 'constant') return step < warmup ? (peak * step) / Math.max(1, warmup) : peak;
  if (kind === 'linear') {
    if (step < warmup) return (peak * step) / Math.max(1, warmup);
    return peak * Math.max(0, (total - step) / Math.max(1, total - warmup));
  }
  if (kind === 'cosine') {
    if (step < warmup) return (peak * step) / Math.max(1, warmup);
    const progress = (step - warmup) / Math.max(1, total - warmup);
    return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
  }
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  if (step > total) return lrEnd;
  const pctRemaining = 1 - (step - warmup) / (total - warmup);
  return (peak - lrEnd) * pctRemaining ** power + lrEnd;
}

test('learning-rate schedules with warmup equal transformers get_*_schedule_with_warmup', () => {
  const peak = 2e-3;
  for (const kind of ['constant', 'linear', 'cosine', 'polynomial'] as const) {
    for (const [warmup, total] of [
      [3, 10],
      [0, 7],
    ]) {
      for (let step = 0; step <= total; step++) {
        const expected = transformersLr(kind, peak, step, warmup, total);
        close(learningRate(peak, { kind, warmupSteps: warmup, totalSteps: total }, step), expected, 1e-12, `${kind} warmup ${warmup} step ${step}`);
      }
    }
  }
  // polynomial with its own end and power
  for (const step of [0, 2, 4, 7, 10]) {
    const s: Schedule = { kind: 'polynomial', warmupSteps: 2, totalSteps: 10, endLr: 1e-5, power: 2 };
    close(learningRate(peak, s, step), transformersLr('polynomial', peak, step, 2, 10, 1e-5, 2), 1e-12, `polynomial power 2 step ${step}`);
  }
  // spot values, so that the formulas above are not the only witness
  close(learningRate(1, { kind: 'linear', warmupSteps: 4, totalSteps: 12 }, 2), 0.5, 1e-12, 'half-way through warmup');
  close(learningRate(1, { kind: 'cosine', warmupSteps: 2, totalSteps: 6 }, 4), 0.5, 1e-12, 'cosine half-way');
  close(learningRate(1, { kind: 'linear', warmupSteps: 0, totalSteps: 4 }, 3), 0.25, 1e-12, 'linear last step');
  assert.equal(learningRate(1, { kind: 'constant', warmupSteps: 3, totalSteps: 5 }, 0), 0);
});

// ---- trainable slices ----

const BASE = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 420,
  max_position_embeddings: 256,
};
const QWEN2 = parseConfig({ ...BASE, model_type: 'qwen2', tie_word_embeddings: true }, 'qwen2/config.json');
const LLAMA_BIAS = parseConfig({ ...BASE, model_type: 'llama', attention_bias: true }, 'llama/config.json');
const LLAMA = parseConfig({ ...BASE, model_type: 'llama' }, 'llama/config.json');

type Block = [tensor: string, axis: 0 | 1, start: number, end: number];
const blocks = (slices: ParamSlice[]): Block[] =>
  slices.map((s) => [s.tensor, s.axis, s.start, s.end] as Block).sort((a, b) => `${a}`.localeCompare(`${b}`));
const heads = (pairs: [number, number][], includeKeyValue: boolean): TuneSpec => ({
  mode: 'heads',
  heads: pairs.map(([layer, head]) => ({ layer, head })),
  includeKeyValue,
});

test('heads mode: q rows and o columns of each head, k/v rows of its KV group once, q/k/v bias entries, no o bias', () => {
  const D = 8;
  assert.equal(QWEN2.headDim, D);
  const l0 = 'model.layers.0.self_attn';
  const l1 = 'model.layers.1.self_attn';
  // heads 0.0 and 0.1 share KV group 0 (4 heads, 2 KV heads); head 1.3 is in group 1
  const slices = trainableSlices(
    LLAMA_BIAS,
    heads(
      [
        [0, 1],
        [0, 0],
        [1, 3],
      ],
      true,
    ),
  );
  const expected: Block[] = [];
  for (const [layer, h] of [
    [0, 0],
    [0, 1],
    [1, 3],
  ]) {
    const p = layer === 0 ? l0 : l1;
    expected.push(
      [`${p}.q_proj.weight`, 0, h * D, (h + 1) * D],
      [`${p}.q_proj.bias`, 0, h * D, (h + 1) * D],
      [`${p}.o_proj.weight`, 1, h * D, (h + 1) * D],
    );
  }
  for (const [p, g] of [
    [l0, 0],
    [l1, 1],
  ] as const) {
    for (const t of ['k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias']) expected.push([`${p}.${t}`, 0, g * D, (g + 1) * D]);
  }
  assert.deepEqual(blocks(slices), blocks(expected.map(([tensor, axis, start, end]) => ({ tensor, axis, start, end }) as ParamSlice)));
  assert.equal(new Set(slices.map((s) => s.id)).size, slices.length, 'no block twice');
  assert.ok(!slices.some((s) => s.tensor.includes('o_proj.bias')), 'the o bias is not per head');
  assert.ok(LLAMA_BIAS.oBias);

  const q = slices.find((s) => s.tensor === `${l1}.q_proj.weight`)!;
  assert.deepEqual([q.shape, q.tensorShape, q.decays], [[D, 32], [32, 32], true]);
  const o = slices.find((s) => s.tensor === `${l1}.o_proj.weight`)!;
  assert.deepEqual(
    [o.shape, o.tensorShape],
    [
      [32, D],
      [32, 32],
    ],
  );
  const kb = slices.find((s) => s.tensor === `${l1}.k_proj.bias`)!;
  assert.deepEqual([kb.shape, kb.tensorShape, kb.decays], [[D], [16], false]);

  // without --include-kv: no k/v; qwen2 always has q/k/v biases; llama without attention_bias has none
  assert.deepEqual(blocks(trainableSlices(QWEN2, heads([[1, 2]], false))), [
    [`${l1}.o_proj.weight`, 1, 16, 24],
    [`${l1}.q_proj.bias`, 0, 16, 24],
    [`${l1}.q_proj.weight`, 0, 16, 24],
  ]);
  assert.deepEqual(blocks(trainableSlices(LLAMA, heads([[1, 2]], true))), [
    [`${l1}.k_proj.weight`, 0, 8, 16],
    [`${l1}.o_proj.weight`, 1, 16, 24],
    [`${l1}.q_proj.weight`, 0, 16, 24],
    [`${l1}.v_proj.weight`, 0, 8, 16],
  ]);
});

test('attention mode trains every q/k/v/o tensor whole; full mode every tensor', () => {
  const whole = (slices: ParamSlice[]) => slices.every((s) => s.axis === 0 && s.start === 0 && s.end === s.tensorShape[0]);
  const attention = trainableSlices(LLAMA_BIAS, { mode: 'attention', heads: [], includeKeyValue: false });
  assert.ok(whole(attention));
  const names = [...expectedTensorShapes(LLAMA_BIAS).keys()];
  assert.deepEqual(attention.map((s) => s.tensor).sort(), names.filter((n) => /self_attn\.[qkvo]_proj\.(weight|bias)$/.test(n)).sort());
  assert.equal(attention.length, 2 * 8);
  const full = trainableSlices(QWEN2, { mode: 'full', heads: [], includeKeyValue: false });
  assert.ok(whole(full));
  assert.deepEqual(full.map((s) => s.tensor).sort(), [...expectedTensorShapes(QWEN2).keys()].sort());
  assert.ok(!full.some((s) => s.tensor === 'lm_head.weight'), 'tied embeddings: no lm_head');
  // decay on matrices only
  for (const s of full) assert.equal(s.decays, s.tensorShape.length === 2, s.tensor);
});

test('a head that does not exist is a RangeError naming it', () => {
  assert.throws(
    () =>
      trainableSlices(
        QWEN2,
        heads(
          [
            [0, 1],
            [2, 0],
          ],
          false,
        ),
      ),
    (e: Error) => e instanceof RangeError && /head 2\.0 does not exist/.test(e.message),
  );
  assert.throws(
    () => trainableSlices(QWEN2, heads([[1, 4]], false)),
    (e: Error) => e instanceof RangeError && /head 1\.4 does not exist/.test(e.message),
  );
  assert.throws(() => trainableSlices(QWEN2, heads([[-1, 0]], false)), RangeError);
});

test('readBlock and writeBlock move rows and columns of a row-major tensor', () => {
  const [rows, cols] = [5, 6];
  const tensor = Float32Array.from({ length: rows * cols }, (_, i) => i);
  const rowSlice: ParamSlice = { id: 'w[1:3]', tensor: 'w', axis: 0, start: 1, end: 3, shape: [2, cols], tensorShape: [rows, cols], decays: true };
  const colSlice: ParamSlice = { id: 'w[:,2:4]', tensor: 'w', axis: 1, start: 2, end: 4, shape: [rows, 2], tensorShape: [rows, cols], decays: true };
  assert.deepEqual([...readBlock(tensor, rowSlice)], [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
  assert.deepEqual([...readBlock(tensor, colSlice)], [2, 3, 8, 9, 14, 15, 20, 21, 26, 27]);
  const copy = tensor.slice();
  writeBlock(
    copy,
    colSlice,
    readBlock(tensor, colSlice).map((x) => -x - 100),
  );
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      assert.equal(copy[i], c === 2 || c === 3 ? -i - 100 : i, `[${r}, ${c}]`);
    }
  }
  writeBlock(
    copy,
    rowSlice,
    Float32Array.from({ length: 12 }, () => 0.5),
  );
  assert.deepEqual([...copy.subarray(6, 18)], new Array(12).fill(0.5));
  assert.deepEqual([...copy.subarray(0, 6)], [0, 1, -102, -103, 4, 5]);
  writeBlock(copy, colSlice, readBlock(tensor, colSlice));
  writeBlock(copy, rowSlice, readBlock(tensor, rowSlice));
  assert.deepEqual(copy, tensor, 'writing back what was read restores the tensor');
  const bias: ParamSlice = { id: 'b[4:8]', tensor: 'b', axis: 0, start: 4, end: 8, shape: [4], tensorShape: [12], decays: false };
  assert.deepEqual(
    [
      ...readBlock(
        Float32Array.from({ length: 12 }, (_, i) => i),
        bias,
      ),
    ],
    [4, 5, 6, 7],
  );
});

// ---- conversations ----

const tokenizer = ModelTokenizer.load(path.join(REFERENCE_DIR, 'qwen2'));

const GOOD = {
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is 2 plus 2?' },
    { role: 'assistant', content: 'It is 4.' },
    { role: 'user', content: 'Are you sure? I think it is 5.' },
    { role: 'assistant', content: 'Yes, 2 plus 2 is 4.' },
  ],
};
const TRAILING_USER = {
  messages: [
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
  ],
};
const LINES = [
  JSON.stringify(GOOD),
  '{"messages": [',
  '{"message": []}',
  JSON.stringify({ messages: [{ role: 'user', content: ['not', 'a', 'string'] }] }),
  JSON.stringify({
    messages: [
      { role: 'system', content: 'x' },
      { role: 'user', content: 'hello' },
    ],
  }),
  '',
  JSON.stringify(TRAILING_USER),
];
const DATA = path.join(work, 'conversations.jsonl');
fs.writeFileSync(DATA, `${LINES.join('\n')}\n`);

/** Contiguous runs of labelled positions, as [start, end). */
function labelledRuns(e: Example): [number, number][] {
  const runs: [number, number][] = [];
  e.labels.forEach((l, t) => {
    if (l === IGNORE_INDEX) return;
    assert.equal(l, e.ids[t], 'a label is the token at its position (shifted inside the loss)');
    const last = runs.at(-1);
    if (last && last[1] === t) last[1] = t + 1;
    else runs.push([t, t + 1]);
  });
  return runs;
}

test('readConversations labels exactly the last assistant message and its end-of-turn tokens', () => {
  const { examples, skipped } = readConversations(DATA, tokenizer, { lossOn: 'last', onBadLine: 'skip' });
  assert.equal(examples.length, 2);
  assert.equal(skipped.length, 4);
  const [e, trailing] = examples;
  assert.deepEqual(e.ids, tokenizer.encodeChat(GOOD.messages, { addGenerationPrompt: false }));
  const prefix = tokenizer.encodeChat(GOOD.messages.slice(0, 4), { addGenerationPrompt: true });
  assert.deepEqual(e.ids.slice(0, prefix.length), prefix, 'the prompt with the generation prompt starts the whole conversation');
  assert.deepEqual(labelledRuns(e), [[prefix.length, e.ids.length]]);
  assert.equal(tokenizer.decode(e.ids.slice(prefix.length)), 'Yes, 2 plus 2 is 4.<|im_end|>\n');
  // a conversation ending with a user turn is cut after its last assistant message
  assert.deepEqual(trailing.ids, tokenizer.encodeChat(TRAILING_USER.messages.slice(0, 2), { addGenerationPrompt: false }));
  assert.equal(tokenizer.decode(trailing.ids.filter((_, t) => trailing.labels[t] !== IGNORE_INDEX)), 'Hello!<|im_end|>\n');
});

test("readConversations with lossOn 'all' labels every assistant message", () => {
  const [e] = readConversations(DATA, tokenizer, { lossOn: 'all', onBadLine: 'skip' }).examples;
  const runs = labelledRuns(e);
  assert.deepEqual(
    runs.map(([a, b]) => tokenizer.decode(e.ids.slice(a, b))),
    ['It is 4.<|im_end|>\n', 'Yes, 2 plus 2 is 4.<|im_end|>\n'],
  );
  assert.equal(runs[0][0], tokenizer.encodeChat(GOOD.messages.slice(0, 2), { addGenerationPrompt: true }).length);
  assert.equal(runs[1][1], e.ids.length);
});

test('bad lines are reported as file:line with the reason, and skipped and counted or stopped at', () => {
  const { skipped } = readConversations(DATA, tokenizer, { lossOn: 'last', onBadLine: 'skip' });
  assert.deepEqual(
    skipped.map((p) => [p.file, p.line]),
    [
      [DATA, 2],
      [DATA, 3],
      [DATA, 4],
      [DATA, 5],
    ],
  );
  assert.match(skipped[0].reason, /^invalid JSON/);
  assert.match(skipped[1].reason, /expected \{"messages": \[\.\.\.\]\}/);
  assert.match(skipped[2].reason, /messages\[0\] needs string "role" and "content"/);
  assert.match(skipped[3].reason, /no assistant message/);

  assert.throws(
    () => readConversations(DATA, tokenizer, { lossOn: 'last', onBadLine: 'stop' }),
    (e: Error) => e instanceof DataError && e.problem.line === 2 && e.message.startsWith(`${DATA}:2: invalid JSON`),
  );
  const noneGood = path.join(work, 'none-good.jsonl');
  fs.writeFileSync(noneGood, `${LINES.slice(1, 5).join('\n')}\n`);
  assert.throws(
    () => readConversations(noneGood, tokenizer, { lossOn: 'last', onBadLine: 'skip' }),
    (e: Error) =>
      e instanceof DataError &&
      /no usable conversation \(4 lines skipped\)/.test(e.message) &&
      [1, 2, 3, 4].every((line) => e.message.includes(`${noneGood}:${line}: `)),
  );
});

// ---- loss batches ----

test('packBatch pads on the right, shifts loss rows and targets by one, and weights by 1 / labelled total', () => {
  const a: Example = { ids: [10, 11, 12], labels: [IGNORE_INDEX, 11, 12] };
  const b: Example = { ids: [20, 21, 22, 23, 24], labels: [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 23, 24] };
  // a label on the first token can never be predicted and does not count
  const c: Example = { ids: [30, 31], labels: [30, 31] };
  assert.equal(labelledCount([a, b]), 4);
  assert.equal(labelledCount([c]), 1);
  assert.equal(labelledCount([a, b, c]), 5);

  const data = (values: BigInt64Array | Float32Array) => [...values].map(Number);
  const exact = packBatch([a, b], 7, 4, { batch: 2, tokens: 5, rows: 4 });
  assert.deepEqual(data(exact.inputIds), [10, 11, 12, 7, 7, 20, 21, 22, 23, 24]);
  assert.deepEqual(data(exact.attentionMask), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(data(exact.positionIds), [0, 1, 2, 0, 0, 0, 1, 2, 3, 4]);
  assert.deepEqual(data(exact.lossRows), [0, 1, 7, 8]);
  assert.deepEqual(data(exact.lossTargets), [11, 12, 23, 24]);
  assert.deepEqual(data(exact.lossWeights), [0.25, 0.25, 0.25, 0.25]);

  // padded to the graph's size, as one micro-batch of an accumulated batch of 10 labelled tokens, with a spare row
  const padded = packBatch([a, b], 7, 10, { batch: 3, tokens: 8, rows: 6 });
  assert.deepEqual(data(padded.inputIds), [10, 11, 12, 7, 7, 7, 7, 7, 20, 21, 22, 23, 24, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
  assert.deepEqual(data(padded.attentionMask).slice(16), [0, 0, 0, 0, 0, 0, 0, 0], 'the spare row is padding only');
  assert.deepEqual(data(padded.lossRows), [0, 1, 10, 11, 0, 0]);
  assert.deepEqual(data(padded.lossTargets), [11, 12, 23, 24, 0, 0]);
  assert.deepEqual(data(padded.lossWeights), [0.1, 0.1, 0.1, 0.1, 0, 0].map(Math.fround));

  assert.deepEqual(data(packBatch([c], 0, 1, { batch: 1, tokens: 2, rows: 1 }).lossRows), [0]);
  assert.throws(() => packBatch([a, b], 7, 4, { batch: 2, tokens: 4, rows: 6 }), RangeError);
  assert.throws(() => packBatch([a, b], 7, 4, { batch: 2, tokens: 8, rows: 3 }), RangeError);
  assert.throws(() => packBatch([a, b], 7, 4, { batch: 1, tokens: 8, rows: 6 }), RangeError);
  assert.throws(() => packBatch([{ ids: [1, 2], labels: [1] }], 0, 1, { batch: 1, tokens: 2, rows: 1 }), RangeError);
  assert.deepEqual([bucket(1, 32), bucket(32, 32), bucket(33, 32), bucket(5, 1)], [32, 32, 64, 5]);
});

// ---- --heads ----

test('parseHeads reads layer.head lists and the JSON files locate writes', () => {
  assert.deepEqual(parseHeads('1.2,0.3'), [
    { layer: 1, head: 2 },
    { layer: 0, head: 3 },
  ]);
  assert.deepEqual(parseHeads(' 12.3 , 0.0'), [
    { layer: 12, head: 3 },
    { layer: 0, head: 0 },
  ]);
  const file = (name: string, value: unknown) => {
    const f = path.join(work, name);
    fs.writeFileSync(f, JSON.stringify(value));
    return f;
  };
  assert.deepEqual(
    parseHeads(
      file('pairs.json', [
        [1, 2],
        [0, 3],
      ]),
    ),
    [
      { layer: 1, head: 2 },
      { layer: 0, head: 3 },
    ],
  );
  assert.deepEqual(parseHeads(file('objects.json', [{ layer: 1, head: 2 }])), [{ layer: 1, head: 2 }]);
  assert.deepEqual(parseHeads(file('located.json', { heads: [{ layer: 4, head: 1, score: 0.3 }, [2, 0]] })), [
    { layer: 4, head: 1 },
    { layer: 2, head: 0 },
  ]);

  const usage = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseHeads(text),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
      text,
    );
  usage('1.x', /"1\.x" is not layer\.head/);
  usage('1.2,', /"" is not layer\.head/);
  usage('1', /"1" is not layer\.head/);
  usage(file('empty.json', []), /expected a non-empty list of heads/);
  usage(file('no-heads.json', { layers: [1] }), /expected a non-empty list of heads/);
  usage(file('string.json', [[1, 'a']]), /heads\[0\] is not \[layer, head\]/);
  usage(file('fraction.json', [[0, 1], { layer: 1.5, head: 0 }]), /heads\[1\] is not/);
  const broken = path.join(work, 'broken.json');
  fs.writeFileSync(broken, '[[1, 2]');
  usage(broken, /broken\.json: not valid JSON/);
});
