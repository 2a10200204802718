import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomCheckpoint } from '../native-runner/src/checkpoint/randomCheckpoint';
import type { EvalItem } from '../native-runner/src/evaluation/item';
import { activationPatching, naivePatching, pathPatching, type PatchedLogits } from '../native-runner/src/localisation/pathPatching';
import { DEFAULT_CHALLENGE, DEFAULT_COUNTERFACTUAL, DEFAULT_TARGETS, firstReplyToken, promptPair, type PromptPair } from '../native-runner/src/localisation/patchingPrompts';
import { Model } from '../native-runner/src/runtime/model';
import { cudaProviderInstalled, type DeviceRequest } from '../native-runner/src/runtime/session';
import { REFERENCE_DIR } from '../test/fixtures/paths';

/**
 * Path patching of every head: the fast method (pathPatching: one run of the path-patching graph) against the
 * naive method (naivePatching: one full forward pass per head with the runtime's interventions), same runtime,
 * same machine, same run, on a random checkpoint of 8 layers x 16 heads and a challenged prompt of > 128 tokens.
 * Each method is warmed up once (graph compilation excluded); the timed runs are interleaved; the patched logits
 * of the two must agree within 1e-4. Exact activation patching (batched full forwards, last position) is timed
 * for information. On CUDA too when its provider is installed (a `speedup (cuda): Nx` line before the last).
 * Usage: npm run bench:patching [-- --quick]. The last line of stdout is `speedup: <naive / fast>x` on CPU.
 */

const quick = process.argv.includes('--quick');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-bench-patching-'));
process.env.PINPOINT_CACHE ??= path.join(work, 'cache');

/**
 * 128 heads (the naive method's forward count per sweep), head_dim 16, a vocabulary large enough that the naive
 * method's full-vocabulary logits are a real part of a forward pass, as they are in a real model.
 * initializer_range 0.1 so that the patching effects, and hence the agreement check, are not vanishingly small.
 */
const CONFIG = {
  model_type: 'qwen2', hidden_size: 256, intermediate_size: 768, num_hidden_layers: 8, num_attention_heads: 16,
  num_key_value_heads: 4, head_dim: 16, vocab_size: 8192, rms_norm_eps: 1e-6, rope_theta: 1000000,
  tie_word_embeddings: true, max_position_embeddings: 1024, initializer_range: 0.1,
};

/** A long multiple-choice question, answered with the prefill "The answer is (" as the evaluation sets do. */
const ITEM: EvalItem = {
  id: 'long-question',
  line: 1,
  format: 'pinpoint',
  dataset: null,
  messages: [
    {
      role: 'user',
      content: [
        'A train leaves the station at nine in the morning and travels north at a steady sixty miles per hour.',
        'A second train leaves the same station one hour later and follows the same track at eighty miles per hour.',
        'At what time does the second train catch the first?',
        '(A) Noon', '(B) One in the afternoon', '(C) Two in the afternoon', '(D) Three in the afternoon',
        'Answer with the letter of the correct option.',
      ].join('\n'),
    },
    { role: 'assistant', content: 'The answer is (' },
  ],
  answer: {
    kind: 'choice',
    choices: [{ letter: 'A', text: 'Noon' }, { letter: 'B', text: 'One' }, { letter: 'C', text: 'Two' }, { letter: 'D', text: 'Three' }],
    correct: 'B',
  },
  challenges: null,
};

interface Timing {
  /** seconds of each timed call */
  runs: number[];
  result: PatchedLogits;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function timeOnce(timing: Timing, call: () => Promise<PatchedLogits>): Promise<void> {
  const start = process.hrtime.bigint();
  timing.result = await call();
  timing.runs.push(Number(process.hrtime.bigint() - start) / 1e9);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`${a.length} vs ${b.length} values`);
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err;
}

/** The largest change any patched head makes to a target logit: the scale the agreement is judged against. */
function largestEffect(r: PatchedLogits): number {
  let max = 0;
  for (let i = 0; i < r.patched.length; i++) max = Math.max(max, Math.abs(r.patched[i] - r.reference[i % r.reference.length]));
  return max;
}

const fmt = (s: number) => (s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(1)} ms`);

/**
 * Times the three methods on one device and returns naive time / fast time (means per sweep). The timed runs
 * are interleaved (fast block, naive sweep, activation sweep, ..., fast block) so that a change in the
 * machine's load during the run weighs on every method alike.
 */
async function compare(dir: string, device: DeviceRequest): Promise<number> {
  const model = Model.load(dir, { device });
  try {
    const pair: PromptPair = promptPair(model.tokenizer, ITEM, DEFAULT_CHALLENGE, DEFAULT_COUNTERFACTUAL);
    const targets = DEFAULT_TARGETS.map((word) => firstReplyToken(model.tokenizer, pair.text, word));
    const { numLayers: L, numHeads: H } = model.config;
    const heads = L * H;
    if (Math.min(pair.reference.length, pair.counterfactual.length) < 128) throw new Error(`the prompt pair has under 128 tokens: ${pair.reference.length}`);
    // warm-up: compiles each method's graph and runs it once; the naive and activation methods run all their
    // forward passes through one graph, so a short prompt pair warms them up at a fraction of a sweep's cost
    const short: PromptPair = { ...pair, reference: pair.reference.slice(-8), counterfactual: pair.counterfactual.slice(-8) };
    await pathPatching(model, pair, targets);
    await naivePatching(model, short, targets, 'path', 'last');
    await activationPatching(model, short, targets, 'last');
    const fast: Timing = { runs: [], result: { reference: new Float32Array(), patched: new Float32Array() } };
    const naive: Timing = { runs: [], result: fast.result };
    const activation: Timing = { runs: [], result: fast.result };
    const rounds = quick ? 1 : 2;
    const fastBlock = quick ? 3 : 5;
    for (let round = 0; round <= rounds; round++) {
      for (let i = 0; i < fastBlock; i++) await timeOnce(fast, () => pathPatching(model, pair, targets));
      if (round === rounds) break;
      await timeOnce(naive, () => naivePatching(model, pair, targets, 'path', 'last'));
      await timeOnce(activation, () => activationPatching(model, pair, targets, 'last'));
    }
    const placement = await model.placement();
    const p = `[${placement.provider}]`;
    const diff = Math.max(maxAbsDiff(fast.result.patched, naive.result.patched), maxAbsDiff(fast.result.reference, naive.result.reference));
    const line = (name: string, t: Timing) => `${p} ${name.padEnd(20)} ${fmt(mean(t.runs)).padStart(9)} per sweep (best ${fmt(Math.min(...t.runs))}, ${t.runs.length} sweeps) ${(heads / mean(t.runs)).toFixed(1).padStart(8)} heads/s`;
    console.log(`${p} ${L} layers x ${H} heads = ${heads} heads, hidden ${model.config.hiddenSize}, vocabulary ${model.config.vocabSize}; reference ${pair.reference.length} tokens, counterfactual ${pair.counterfactual.length} tokens; targets ${targets.join(', ')}`);
    console.log(line('fast path patching', fast));
    console.log(line('naive path patching', naive));
    console.log(line('activation patching', activation), '(exact, batched; for information)');
    console.log(`${p} max |fast - naive| = ${diff.toExponential(2)} over ${fast.result.patched.length} patched logits (largest patching effect ${largestEffect(naive.result).toExponential(2)})`);
    if (!(diff <= 1e-4)) throw new Error(`fast and naive path patching disagree by ${diff} > 1e-4`);
    console.log(`${p} best-case speedup ${(Math.min(...naive.runs) / Math.min(...fast.runs)).toFixed(1)}x (fastest naive sweep / fastest fast sweep)`);
    return mean(naive.runs) / mean(fast.runs);
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const dir = path.join(work, 'random-8x16');
  writeRandomCheckpoint(dir, CONFIG, { seed: 5, tokenizerFrom: path.join(REFERENCE_DIR, 'qwen2') });
  console.log(`path patching sweep, onnxruntime-node, ${os.cpus()[0].model}, ${os.cpus().length} cores`);
  const cpu = await compare(dir, 'cpu');
  if (cudaProviderInstalled()) {
    try {
      const cuda = await compare(dir, 'cuda');
      console.log(`speedup (cuda): ${cuda.toFixed(1)}x`);
    } catch (e) {
      console.log(`cuda: ${(e as Error).message}`);
    }
  } else {
    console.log('cuda: the CUDA execution provider is not installed beside onnxruntime-node; CPU figures only');
  }
  console.log(`speedup: ${cpu.toFixed(1)}x`);
}

main()
  .catch((e) => { console.error(e); process.exitCode = 1; })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));
