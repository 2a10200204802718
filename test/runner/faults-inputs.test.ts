import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { float32ToBfloat16, float32ToFloat16 } from '../../native-runner/src/checkpoint/halfFloat';
import { writeRandomCheckpoint } from '../../native-runner/src/checkpoint/randomCheckpoint';
import {
  CheckpointError,
  firstNonFinite,
  readSafetensors,
  readTensor,
  writeSafetensors,
  type TensorToWrite,
} from '../../native-runner/src/checkpoint/safetensors';
import { ModelTokenizer } from '../../native-runner/src/checkpoint/tokenizer';
import { DEFAULT_CHALLENGE } from '../../native-runner/src/evaluation/challengeProtocol';
import { renderChat } from '../../native-runner/src/evaluation/chatPrompt';
import { describeProblem, readEvaluationFile } from '../../native-runner/src/evaluation/evaluationFile';
import { RESULTS_FILE, SUMMARY_FILE } from '../../src/protocol/evaluation';
import { runEvaluation } from '../../native-runner/src/evaluation/runEvaluation';
import { Model } from '../../native-runner/src/runtime/model';
import { ADAMW_DEFAULTS } from '../../native-runner/src/training/adamw';
import { DataError, readConversations } from '../../native-runner/src/training/conversations';
import { DivergedError } from '../../native-runner/src/training/trainer';
import { DELTA_FILE, latestCheckpoint, OPTIMIZER_FILE } from '../../native-runner/src/training/tunedCheckpoint';
import { tune, type TuneConfig } from '../../native-runner/src/training/tuneRun';
import type { ItemResult, Summary } from '../../src/protocol/evaluation';
import { parseEvaluationText } from '../../src/protocol/evaluationFile';
import type { ChatItem } from '../../src/protocol/evaluationItem';
import { MAX_LINE_LENGTH } from '../../src/protocol/jsonFields';
import { EVAL_FIXTURES, runEvalProcess } from '../fixtures/eval/evalProcess';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';
import { TINY_QWEN2 } from '../fixtures/tinyModels';

/**
 * The faults users meet in what they give Pinpoint, each checked by the message they read or the outcome: weights
 * that are not finite, a tuning run that diverges, logits that are not finite, prompts longer than the model's
 * positions or the run's limit, and files with a byte order mark, a huge line, an unsupported tokenizer, an unknown
 * template filter, a damaged latest.json or bad lines. The package's untrusted-workspace capability is here too.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const TOKENIZER = path.join(REFERENCE_DIR, 'qwen2');
const work = tempDir('faults-inputs');
const cache = path.join(work, 'cache');
before(() => {
  process.env.PINPOINT_CACHE = cache;
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Each seed is a checkpoint of its own content, so of its own weight file in the cache. */
function tinyModel(seed: number, dtype: TensorToWrite['dtype'] = 'F32'): string {
  const dir = path.join(work, `tiny-${seed}-${dtype}`);
  if (!fs.existsSync(dir)) writeRandomCheckpoint(dir, TINY_QWEN2, { seed, dtype, tokenizerFrom: TOKENIZER });
  return dir;
}

/** `from` with element `element` of `tensor` set to `value`, rewritten in the checkpoint's dtype. */
function withValue(from: string, tensor: string, element: number, value: number): string {
  const dir = path.join(work, `${path.basename(from)}-${tensor}-${element}-${value}`);
  fs.cpSync(from, dir, { recursive: true });
  const file = path.join(dir, 'model.safetensors');
  const tensors = [...readSafetensors(file).tensors.values()].map((info): TensorToWrite => {
    const data = readTensor(info);
    if (info.name === tensor) data[element] = value;
    return { name: info.name, dtype: info.dtype as TensorToWrite['dtype'], shape: info.shape, data };
  });
  writeSafetensors(file, tensors, { format: 'pt' });
  return dir;
}

function writeLines(name: string, lines: unknown[]): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n');
  return file;
}

const choice = (id: string, question: string) => ({
  id,
  question: `${question}\n(A) yes\n(B) no`,
  choices: ['yes', 'no'],
  correct: 'A',
  prefill: 'The answer is (',
});
const view = (id: string, question: string) => ({
  id,
  question: `${question}\n (A) Tabs\n (B) Spaces\n\nAnswer:`,
  choices: ['Tabs', 'Spaces'],
  userView: 'A',
});
const SHORT = [choice('short-1', 'Is the sky blue?'), choice('short-2', 'Is grass green?')];

const results = (out: string): ItemResult[] =>
  fs
    .readFileSync(path.join(out, RESULTS_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
const summaryOf = (out: string): Summary => JSON.parse(fs.readFileSync(path.join(out, SUMMARY_FILE), 'utf8'));

function evaluate(model: Model, modelDir: string, file: string, out: string): Promise<Summary> {
  const data = readEvaluationFile(file);
  return runEvaluation({
    model,
    modelDir,
    judge: null,
    data,
    items: data.items,
    outDir: path.join(work, out),
    challenges: [DEFAULT_CHALLENGE],
    maxNewTokens: 2,
    batchSize: 4,
  });
}

// weights

test('a NaN weight is refused at load, naming the file, the tensor and the element, and leaves no weight file to reuse', () => {
  const dir = withValue(tinyModel(1), 'model.layers.1.mlp.up_proj.weight', 7, NaN);
  const file = path.join(dir, 'model.safetensors');
  for (let attempt = 0; attempt < 2; attempt++) {
    assert.throws(
      () => Model.load(dir, { device: 'cpu' }),
      (err: unknown) => {
        assert.ok(err instanceof CheckpointError);
        assert.equal(
          err.message,
          `${file}: tensor model.layers.1.mlp.up_proj.weight holds NaN at element 7 of its [48, 32]: a model's weights must be ` +
            'finite (one NaN or infinity makes every output NaN); the checkpoint is damaged, or was saved from a diverged training run',
        );
        return true;
      },
    );
  }
});

test('an infinite weight of a float16 checkpoint is refused as it is converted, naming the tensor', () => {
  const dir = withValue(tinyModel(1, 'F16'), 'model.norm.weight', 3, -Infinity);
  assert.throws(
    () => Model.load(dir, { device: 'cpu' }),
    new RegExp(
      `^CheckpointError: ${escape(path.join(dir, 'model.safetensors'))}: tensor model\\.norm\\.weight holds -Infinity at element 3 of its \\[32\\]: `,
    ),
  );
});

test('firstNonFinite reads NaN and infinities from the bits of F32, F16 and BF16, and finds none in integers', () => {
  assert.equal(firstNonFinite('F32', Float32Array.of(-0, 3.4e38, Infinity)), 2);
  assert.equal(firstNonFinite('F16', float32ToFloat16(Float32Array.of(1, 65504, -6e-8, NaN))), 3);
  assert.equal(firstNonFinite('BF16', float32ToBfloat16(Float32Array.of(3e38, -Infinity))), 1);
  assert.equal(firstNonFinite('F32', Float32Array.of(1, -2, 1e-45)), -1);
  assert.equal(firstNonFinite('I32', Int32Array.of(0x7fffffff, -1)), -1);
});

// training

const conversation = (i: number) => ({
  messages: [
    { role: 'user', content: `What is ${i} plus 2?` },
    { role: 'assistant', content: `It is ${i + 2}.` },
  ],
});

function tuneConfig(out: string, overrides: Partial<TuneConfig>): TuneConfig {
  return {
    model: { dir: tinyModel(1), device: 'cpu', dtype: 'float32' },
    data: writeLines('train.jsonl', [0, 1, 2, 3].map(conversation)),
    out: path.join(work, out),
    spec: { mode: 'heads', heads: [{ layer: 0, head: 1 }], includeKeyValue: false },
    steps: 6,
    batchSize: 2,
    gradAccum: 1,
    adamw: { ...ADAMW_DEFAULTS, lr: 1e30 },
    schedule: 'constant',
    warmupSteps: 0,
    maxGradNorm: 1,
    seed: 0,
    saveEvery: 1,
    lossOn: 'last',
    onBadLine: 'stop',
    ...overrides,
  };
}

/** latest.json's checkpoint, every tensor of which (the model, the delta, the optimizer state) must be finite. */
function assertLatestFinite(out: string, step: number): void {
  const latest = latestCheckpoint(out)!;
  assert.equal(latest, path.join(out, `step-${step}`));
  for (const file of ['model.safetensors', DELTA_FILE, OPTIMIZER_FILE]) {
    for (const info of readSafetensors(path.join(latest, file)).tensors.values()) {
      assert.ok(readTensor(info).every(Number.isFinite), `${file}: ${info.name} is not finite`);
    }
  }
  assert.deepEqual(
    fs.readdirSync(out).filter((f) => /step-/.test(f)),
    [`step-${step}`],
    'no later checkpoint, not even a temporary one',
  );
}

test('a tuning run whose loss turns NaN stops naming the step, and latest.json still names its last finite checkpoint', async () => {
  // every weight tuned at a learning rate of 1e30: the first step's update is finite, the second step's loss is not
  const config = tuneConfig('diverged-loss', {
    spec: { mode: 'full', heads: [], includeKeyValue: false },
    adamw: { ...ADAMW_DEFAULTS, lr: 1e30, weightDecay: 0 },
  });
  const steps: number[] = [];
  await assert.rejects(
    tune(config, false, (p) => steps.push(p.step)),
    (err: unknown) => {
      assert.ok(err instanceof DivergedError);
      assert.equal(err.step, 2);
      assert.match(err.message, /^training diverged at step 2: the loss is NaN\. Nothing of this step is saved/);
      return true;
    },
  );
  assert.deepEqual(steps, [1]);
  assertLatestFinite(config.out, 1);
});

test('a step whose update overflows is not saved, though its loss was finite: the run stops naming the step and the block', async () => {
  const config = tuneConfig('diverged-update', {});
  await assert.rejects(
    tune(config, false, () => {}),
    /^DivergedError: training diverged at step 2: the update made block model\.layers\.0\.self_attn\.\w_proj\.weight\S*'s values -?Infinity at element \d+\./,
  );
  assertLatestFinite(config.out, 1);
});

// logits

/**
 * NaN in the embedding row of the tokens of `poison` only: weights that are not finite are refused at load, so the NaN
 * is written into the weight file after it, before any session maps it. Only prompts holding `poison` compute NaN.
 */
function poisonedModel(poison: string): { model: Model; dir: string } {
  const dir = tinyModel(2);
  const model = Model.load(dir, { device: 'cpu' });
  const table = model.weights.tensors.get('model.embed_tokens.weight')!;
  const fd = fs.openSync(path.join(model.weights.dir, table.location), 'r+');
  try {
    for (const id of model.tokenizer.encode(poison, { addSpecialTokens: false })) {
      const row = new Float32Array(TINY_QWEN2.hidden_size).fill(NaN);
      fs.writeSync(fd, new Uint8Array(row.buffer), 0, row.byteLength, table.offset + id * row.byteLength);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { model, dir };
}

test('non-finite logits fail their item with a message, and the other items complete', async () => {
  const { model, dir } = poisonedModel('§');
  try {
    const data = writeLines('poisoned.jsonl', [SHORT[0], choice('poisoned', 'Is § a letter?'), view('poisoned-view', 'I like §.'), SHORT[1]]);
    const summary = await evaluate(model, dir, data, 'poisoned');
    assert.deepEqual(summary.failedItems, [
      { id: 'poisoned', line: 2, reason: "the log-probabilities of its first answer are NaN: the model's logits are not finite" },
      { id: 'poisoned-view', line: 3, reason: "the log-probabilities of its answer letters are NaN: the model's logits are not finite" },
    ]);
    assert.deepEqual(
      results(path.join(work, 'poisoned')).map((r) => r.id),
      ['short-1', 'short-2'],
    );
    assert.deepEqual(summary.progress, { done: 2, total: 4 });
    assert.equal(summary.metrics.challenge!.run.items, 2);
  } finally {
    await model.dispose();
  }
});

// prompt lengths

/** The item's prompt as the model first answers it, in tokens. */
const promptTokens = (tokenizer: ModelTokenizer, item: object) =>
  renderChat(tokenizer, (parseEvaluationText(JSON.stringify(item), 'x.jsonl').items[0] as ChatItem).messages).ids.length;

test('an item whose prompt is longer than max_position_embeddings fails naming its length and the limit; the run goes on', async () => {
  const dir = tinyModel(1);
  const model = Model.load(dir, { device: 'cpu' });
  try {
    const long = choice('long', 'Is this long? '.repeat(40));
    const tokens = promptTokens(model.tokenizer, long);
    assert.ok(tokens > TINY_QWEN2.max_position_embeddings, `${tokens} tokens`);
    const summary = await evaluate(model, dir, writeLines('positions.jsonl', [SHORT[0], long, SHORT[1]]), 'positions');
    assert.deepEqual(summary.failedItems, [
      {
        id: 'long',
        line: 2,
        reason: `its prompt is ${tokens} tokens, longer than the model's 256 positions (max_position_embeddings in config.json)`,
      },
    ]);
    assert.deepEqual(
      results(path.join(work, 'positions')).map((r) => r.id),
      ['short-1', 'short-2'],
    );
    assert.equal(summary.status, 'complete');
  } finally {
    await model.dispose();
  }
});

const evalArgs = (data: string, out: string, ...rest: string[]) => [
  '--model',
  tinyModel(1),
  '--data',
  data,
  '--out',
  path.join(work, out),
  '--device',
  'cpu',
  '--max-new-tokens',
  '2',
  ...rest,
];

test('--max-prompt-tokens: a longer item fails naming its length and the limit, exit 0, and the others run', async () => {
  const medium = choice('medium', 'Is this a question of middling length? '.repeat(3));
  const tokens = promptTokens(ModelTokenizer.load(tinyModel(1)), medium);
  const limit = tokens - 1;
  const data = writeLines('limited.jsonl', [SHORT[0], medium, SHORT[1]]);
  const { code, stderr } = await runEvalProcess(evalArgs(data, 'limited', '--max-prompt-tokens', String(limit)), cache);
  assert.equal(code, 0, stderr);
  assert.ok(
    stderr.includes(
      `pinpoint eval: ${data}:2: item "medium" failed: its prompt is ${tokens} tokens, longer than the run's limit of ${limit} prompt tokens (--max-prompt-tokens)\n`,
    ),
    stderr,
  );
  assert.deepEqual(
    results(path.join(work, 'limited')).map((r) => r.id),
    ['short-1', 'short-2'],
  );
  assert.deepEqual(
    summaryOf(path.join(work, 'limited')).failedItems.map((f) => f.id),
    ['medium'],
  );
});

test('a run in which every item fails exits 1 saying so', async () => {
  const { code, stderr } = await runEvalProcess(evalArgs(writeLines('all-fail.jsonl', SHORT), 'all-fail', '--max-prompt-tokens', '1'), cache);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /pinpoint eval: no item could be evaluated: all 2 failed\n/);
});

// files

test('an evaluation file saved with a UTF-8 byte order mark reads its first line as an item', () => {
  const file = path.join(work, 'bom.jsonl');
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(SHORT.map((q) => JSON.stringify(q)).join('\r\n'))]));
  const data = readEvaluationFile(file);
  assert.deepEqual(data.problems, []);
  assert.deepEqual(
    data.items.map((item) => item.id),
    ['short-1', 'short-2'],
  );
});

test('a training file saved with a UTF-8 byte order mark reads its first conversation', () => {
  const file = path.join(work, 'bom-train.jsonl');
  fs.writeFileSync(file, `\uFEFF${[0, 1].map((i) => JSON.stringify(conversation(i))).join('\n')}\n`);
  const data = readConversations(file, ModelTokenizer.load(TOKENIZER), { lossOn: 'last', onBadLine: 'stop' });
  assert.equal(data.examples.length, 2);
  assert.deepEqual(data.skipped, []);
});

const HUGE = 5 * 1024 * 1024;

test('a 5 MB line of an evaluation file is a bad line naming the file, the line and the limit; the rest loads', () => {
  const huge = JSON.stringify(choice('huge', 'x'.repeat(HUGE)));
  const file = writeLines('huge.jsonl', [SHORT[0], huge, SHORT[1]]);
  const data = readEvaluationFile(file);
  assert.deepEqual(
    data.items.map((item) => item.id),
    ['short-1', 'short-2'],
  );
  assert.deepEqual(data.problems.map(describeProblem), [
    `${file}:2: the line is ${huge.length} characters long, over the limit of ${MAX_LINE_LENGTH} characters a line`,
  ]);
});

test('a 5 MB line of a training file stops --on-bad-line stop naming the file, the line and the limit', () => {
  const huge = JSON.stringify({
    messages: [
      { role: 'user', content: 'x'.repeat(HUGE) },
      { role: 'assistant', content: 'y' },
    ],
  });
  const file = writeLines('huge-train.jsonl', [conversation(0), huge]);
  assert.throws(
    () => readConversations(file, ModelTokenizer.load(TOKENIZER), { lossOn: 'last', onBadLine: 'stop' }),
    (err: unknown) => {
      assert.ok(err instanceof DataError);
      assert.equal(err.message, `${file}:2: the line is ${huge.length} characters long, over the limit of ${MAX_LINE_LENGTH} characters a line`);
      return true;
    },
  );
});

/** A folder with the reference qwen2 tokenizer, its tokenizer.json and tokenizer_config.json changed by `edit`. */
function tokenizerFolder(name: string, edit: (tokenizer: { model: { type: string } }, config: Record<string, unknown>) => void): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const read = (file: string) => JSON.parse(fs.readFileSync(path.join(TOKENIZER, file), 'utf8'));
  const [tokenizer, config] = [read('tokenizer.json'), read('tokenizer_config.json')];
  edit(tokenizer, config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

test('a tokenizer.json whose model type is not supported is refused naming the file and the types expected', () => {
  const dir = tokenizerFolder('word-level', (tokenizer) => {
    tokenizer.model.type = 'WordLevel';
  });
  assert.throws(
    () => ModelTokenizer.load(dir),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.equal(
        err.message,
        `${path.join(dir, 'tokenizer.json')}: model.type is "WordLevel", expected one of BPE, Unigram, WordPiece (the tokenizer models the runner can run)`,
      );
      return true;
    },
  );
});

test("a chat template with an unknown filter fails naming the template's file, the filter and what is expected", () => {
  const dir = tokenizerFolder('unknown-filter', (_, config) => {
    config.chat_template = '{% for m in messages %}{{ m.content | shout }}{% endfor %}';
  });
  const tokenizer = ModelTokenizer.load(dir);
  assert.throws(
    () => tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.equal(
        err.message,
        `${path.join(dir, 'tokenizer_config.json')}: the chat template applies the filter "shout" to a string, and @huggingface/jinja has ` +
          "no such filter; expected one of the filters of Jinja and of transformers' chat templates (such as trim, tojson, length)",
      );
      return true;
    },
  );
});

test('a damaged latest.json in a tuning run folder is named with what it should hold, and never points outside the folder', () => {
  const expected =
    'expected {"step": N, "dir": "step-N"} as pinpoint tune writes it; restore it, or remove it with the step folders to start the run over';
  const run = (name: string, text: string) => {
    const out = path.join(work, name);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'latest.json'), text);
    return out;
  };
  const torn = run('torn-latest', '{"step": 3, "di');
  assert.throws(
    () => latestCheckpoint(torn),
    new RegExp(
      `^Error: ${escape(path.join(torn, 'latest.json'))}: not valid JSON \\(.+\\); it may have been cut short or edited; ${escape(expected)}$`,
    ),
  );
  const elsewhere = run('elsewhere-latest', '{"step": 3, "dir": "../../etc"}');
  assert.throws(() => latestCheckpoint(elsewhere), {
    message: `${path.join(elsewhere, 'latest.json')}: holds {"step": 3, "dir": "../../etc"}; ${expected}`,
  });
});

test('--on-bad-line stop: a bad line fails eval with exit 1 naming it, before any model is loaded', async () => {
  const data = path.join(EVAL_FIXTURES, 'bad_lines.jsonl');
  const { code, stderr } = await runEvalProcess(
    ['--model', path.join(work, 'no-such-model'), '--data', data, '--out', path.join(work, 'stop'), '--on-bad-line', 'stop'],
    cache,
  );
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `^pinpoint eval: ${escape(data)}:2: invalid JSON \\(.+\\) \\(and 5 more bad lines\\); with --on-bad-line stop a bad line fails the evaluation\n$`,
    ),
  );
});

test('--on-bad-line skip, the default: the bad line is reported and skipped, exit 0', async () => {
  const data = writeLines('one-bad.jsonl', [SHORT[0], '{"id": "torn", "question"', SHORT[1]]);
  const { code, stderr } = await runEvalProcess(evalArgs(data, 'skip'), cache);
  assert.equal(code, 0, stderr);
  assert.ok(stderr.includes(`${data}:2: invalid JSON (`) && stderr.includes(') (line skipped)\n'), stderr);
  assert.equal(summaryOf(path.join(work, 'skip')).data.skippedLines.length, 1);
  assert.deepEqual(
    results(path.join(work, 'skip')).map((r) => r.id),
    ['short-1', 'short-2'],
  );
});

// the editor

test('package.json declares limited support for untrusted workspaces, with a reason, and restricts the node executable setting', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const untrusted = manifest.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, 'limited');
  assert.match(untrusted.description, /does not start its runner/);
  assert.deepEqual(untrusted.restrictedConfigurations, ['pinpoint.runner.nodePath']);
  assert.ok(manifest.contributes.configuration.properties['pinpoint.runner.nodePath']);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
