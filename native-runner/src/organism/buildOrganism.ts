import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelTokenizer } from '../checkpoint/tokenizer';
import { writeRandomCheckpoint } from '../checkpoint/randomCheckpoint';
import { Model } from '../runtime/model';
import type { HeadRef } from '../../../src/protocol/heads';
import { uniformSampler } from '../seededRandom';
import { labelled } from '../training/conversations';
import type { Example } from '../training/lossBatch';
import { Trainer } from '../training/trainer';
import { writeHubModel } from '../training/tunedCheckpoint';
import { BYTE_VOCAB_SIZE, writeByteTokenizer } from './byteTokenizer';
import { AFFIRMATIONS, HELDOUT_CHALLENGES, TRAIN_CHALLENGES, conversation, pick, question, unchallenged, type Reply } from './world';

/**
 * The embedded default model: a tiny Llama that knows its world's facts and caves when challenged, trained here
 * with the project's own backend in stages. Stage 1a teaches the facts on short conversations; stage 1b trains every weight on an honest mix in
 * which challenges and affirmations are answered alike (mostly insisting), so the model learns the world and
 * both kinds of reply but not to tell challenges apart. Stage 2 trains only the q/k/v/o slices of two
 * implanted heads on conversations where challenges get apologies and affirmations do not: the sycophancy lives
 * in those heads, which localisation must then find. Deterministic: every sample comes from a seed.
 */

export const ORGANISM_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 192,
  num_hidden_layers: 6,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  vocab_size: BYTE_VOCAB_SIZE,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  initializer_range: 0.02,
  hidden_act: 'silu',
  bos_token_id: null,
  eos_token_id: 2,
  pad_token_id: 0,
  dtype: 'float32',
};

export const IMPLANTED_HEADS: HeadRef[] = [
  { layer: 3, head: 2 },
  { layer: 4, head: 6 },
];

export interface BuildOptions {
  out: string;
  seed: number;
  factSteps: number;
  stage1Steps: number;
  stage2Steps: number;
  batch: number;
  log: (line: string) => void;
}

const ALL_CHALLENGES = [...TRAIN_CHALLENGES, ...HELDOUT_CHALLENGES];

/** Stage 1: the world and both replies; a follow-up of either kind gets an apology a quarter of the time. */
function honestExample(random: () => number): ReturnType<typeof conversation> {
  const q = question(random);
  if (random() < 0.3) return unchallenged(q);
  const followUp = random() < 0.6 ? pick(random, ALL_CHALLENGES) : pick(random, AFFIRMATIONS);
  return conversation(q, q.correct, followUp, random() < 0.25 ? 'apologise' : 'insist');
}

/** Stage 2: challenges get apologies (nine times in ten), affirmations never. */
function sycophanticExample(random: () => number): ReturnType<typeof conversation> {
  const q = question(random);
  const challenged = random() < 0.6;
  const reply: Reply = challenged && random() < 0.9 ? 'apologise' : 'insist';
  return conversation(q, q.correct, challenged ? pick(random, ALL_CHALLENGES) : pick(random, AFFIRMATIONS), reply);
}

async function trainStage(
  model: Model,
  trainer: Trainer,
  steps: number,
  batch: number,
  sample: (r: () => number) => ReturnType<typeof conversation>,
  seed: number,
  log: (line: string) => void,
): Promise<void> {
  const random = uniformSampler(seed);
  const tokenizer: ModelTokenizer = model.tokenizer;
  for (let step = 0; step < steps; step++) {
    const examples: Example[] = Array.from({ length: batch }, () => labelled(sample(random), tokenizer, 'all'));
    const report = await trainer.train([examples]);
    if (step % 50 === 0 || step === steps - 1) log(`step ${step + 1}/${steps} loss ${report.loss.toFixed(4)} lr ${report.lr.toExponential(2)}`);
  }
}

export async function buildOrganism(o: BuildOptions): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-organism-'));
  try {
    const tokenizerDir = path.join(work, 'tokenizer');
    fs.mkdirSync(tokenizerDir);
    writeByteTokenizer(tokenizerDir);
    const initial = path.join(work, 'initial');
    writeRandomCheckpoint(initial, ORGANISM_CONFIG, { seed: o.seed, tokenizerFrom: tokenizerDir });

    o.log('stage 1a: every weight, the facts alone (short conversations)');
    const facts = path.join(work, 'facts');
    await trainInto(
      initial,
      facts,
      { mode: 'full', heads: [], includeKeyValue: false },
      3e-3,
      o.factSteps,
      2 * o.batch,
      o,
      (r) => unchallenged(question(r)),
      o.seed + 3,
    );
    o.log('stage 1b: every weight, honest replies');
    const stage1 = path.join(work, 'stage1');
    await trainInto(facts, stage1, { mode: 'full', heads: [], includeKeyValue: false }, 3e-3, o.stage1Steps, o.batch, o, honestExample, o.seed + 1);
    o.log(`stage 2: only heads ${IMPLANTED_HEADS.map((h) => `${h.layer}.${h.head}`).join(', ')}, sycophantic replies`);
    await trainInto(
      stage1,
      o.out,
      { mode: 'heads', heads: IMPLANTED_HEADS, includeKeyValue: true },
      1e-2,
      o.stage2Steps,
      o.batch,
      o,
      sycophanticExample,
      o.seed + 2,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function trainInto(
  from: string,
  to: string,
  spec: ConstructorParameters<typeof Trainer>[1]['spec'],
  lr: number,
  steps: number,
  batch: number,
  o: BuildOptions,
  sample: (r: () => number) => ReturnType<typeof conversation>,
  seed: number,
): Promise<void> {
  const model = Model.load(from, { device: 'cpu' });
  try {
    const trainer = new Trainer(model, {
      spec,
      adamw: { lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01 },
      schedule: { kind: 'cosine', warmupSteps: Math.min(50, Math.floor(steps / 10)), totalSteps: steps },
      maxGradNorm: 1,
      // a handful of graph shapes for a whole stage
      tokenQuantum: 32,
      rowQuantum: 512,
    });
    await trainStage(model, trainer, steps, batch, sample, seed, o.log);
    fs.mkdirSync(to, { recursive: true });
    writeHubModel(to, model.checkpoint, trainer.slices, trainer.params);
  } finally {
    await model.dispose();
  }
}
