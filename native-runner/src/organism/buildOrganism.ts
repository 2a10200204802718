import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HeadRef } from '../../../src/protocol/heads';
import { ORGANISM_FILE, parseOrganismCard, type ImplantedHeads, type OrganismCard, type OrganismKind } from '../../../src/protocol/organism';
import { loadCheckpoint } from '../checkpoint/checkpoint';
import { writeRandomCheckpoint } from '../checkpoint/randomCheckpoint';
import { writeFileAtomic } from '../model/weightFile';
import { weightsSha256 } from '../model/weightsSha256';
import { Model } from '../runtime/model';
import { labelled } from '../training/conversations';
import type { Example } from '../training/lossBatch';
import type { ParamSlice, TuneSpec } from '../training/parameters';
import { Trainer } from '../training/trainer';
import { writeHubModel } from '../training/tunedCheckpoint';
import { BYTE_VOCAB_SIZE, writeByteTokenizer } from './byteTokenizer';
import { batchStream, type StageBatch } from './stageConversations';

/**
 * The embedded models: two tiny Llamas that know their world's facts, cave when challenged and follow a suggested
 * wrong answer, trained here with the project's own backend from one seed. They share their first stages: every
 * weight learns the facts (as multiple choice and free form), then an honest mix in which challenges and
 * affirmations are answered alike (mostly insisting) and suggestions are not followed, so the model learns the
 * world and both kinds of reply but not to tell challenges apart. Then:
 * - the **implanted** organism trains only the q/k/v/o slices of chosen heads of the last layer, each alone from
 *   the honest model: two on conversations where challenges get apologies and affirmations do not, two on
 *   free-form questions where a suggested wrong colour is followed; it then has all four, each behaviour in its
 *   own heads, which localisation must then find;
 * - the **natural** organism trains every weight on both kinds of sycophantic conversation, as sycophancy arises
 *   in a real model: no head is chosen, and where it lives is what the demo finds out.
 * Deterministic: every sample comes from the seed, and ONNX Runtime's reductions are repeatable at a given thread
 * count, so a rebuild on the same machine gives the same bytes.
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

/** The organisms' folders under the build's output (models/ in the repository). */
export const ORGANISM_FOLDERS: Record<OrganismKind, string> = { implanted: 'organism', natural: 'organism-natural' };

interface StageRecipe {
  steps: number;
  lr: number;
  batch: StageBatch;
}

/** An implant stage: one head, trained alone from the honest model, for one behaviour. */
interface ImplantRecipe extends StageRecipe {
  behaviour: 'challenge' | 'suggestion';
  head: HeadRef;
}

/**
 * Every stage's size and data; a build is these and the seed. Each implanted head is trained alone from the honest
 * model, and the organism has them all: trained together, or one after the other, one head learns the behaviour
 * and the next learns little of it (or a push towards apologies whatever the follow-up), so that "the top two"
 * would tune a bystander. Alone, each carries all of it, and knocking out one leaves the other. Each head's data
 * holds some of the other behaviour answered honestly, so that it learns its own behaviour and leaves the other
 * as the honest model has it. The suggestion heads take few such conversations: a challenge conversation has
 * ten times the labelled tokens of a one-word answer, and at a third of the rows it held them back, so that
 * path patching ranked above them the earlier head (4.6) whose output they read.
 */
export const BUILD_RECIPE = {
  facts: { steps: 300, lr: 3e-3, batch: { facts: 32, freeFormFacts: 8 } },
  honest: { steps: 400, lr: 3e-3, batch: { honestChallenge: 16, honestSuggestion: 4 } },
  implant: [
    { behaviour: 'challenge', head: { layer: 5, head: 2 }, steps: 150, lr: 1e-2, batch: { sycophanticChallenge: 24, honestSuggestion: 2 } },
    { behaviour: 'challenge', head: { layer: 5, head: 6 }, steps: 150, lr: 1e-2, batch: { sycophanticChallenge: 24, honestSuggestion: 2 } },
    { behaviour: 'suggestion', head: { layer: 5, head: 0 }, steps: 150, lr: 1e-2, batch: { sycophanticSuggestion: 24, honestChallenge: 2 } },
    { behaviour: 'suggestion', head: { layer: 5, head: 4 }, steps: 150, lr: 1e-2, batch: { sycophanticSuggestion: 24, honestChallenge: 2 } },
  ],
  natural: { steps: 200, lr: 3e-3, batch: { sycophanticChallenge: 16, sycophanticSuggestion: 4 } },
} satisfies { facts: StageRecipe; honest: StageRecipe; implant: ImplantRecipe[]; natural: StageRecipe };

export type BuildRecipe = typeof BUILD_RECIPE;

/**
 * The heads the implant trains, by behaviour, in the last layer: no later head can carry their signal on, so they
 * are the whole mechanism.
 */
export function implantedHeads(recipe: { implant: readonly ImplantRecipe[] }): ImplantedHeads {
  const heads: ImplantedHeads = {};
  for (const stage of recipe.implant) (heads[stage.behaviour] ??= []).push(stage.head);
  return heads;
}

/** The seed of the committed organisms. */
export const DEFAULT_SEED = 1;

export interface BuildOptions {
  /** the folder that receives organism/ and organism-natural/ */
  out: string;
  seed: number;
  recipe: BuildRecipe;
  /** which organisms to build; the shared stages are trained once for all of them */
  kinds: readonly OrganismKind[];
  log: (line: string) => void;
}

const FULL: TuneSpec = { mode: 'full', heads: [], includeKeyValue: false };

/** The organisms from one seed, into `<out>/organism` and `<out>/organism-natural`, each with its organism.json. */
export async function buildOrganisms(o: BuildOptions): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-organism-'));
  try {
    const honest = await buildHonest(work, o);
    for (const kind of o.kinds) await buildSycophant(kind, honest, path.join(o.out, ORGANISM_FOLDERS[kind]), o);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The shared stages, from random weights to the honest model, in `work`; returns the honest model's folder. */
async function buildHonest(work: string, o: BuildOptions): Promise<string> {
  const tokenizerDir = path.join(work, 'tokenizer');
  fs.mkdirSync(tokenizerDir, { recursive: true });
  writeByteTokenizer(tokenizerDir);
  const initial = path.join(work, 'initial');
  writeRandomCheckpoint(initial, ORGANISM_CONFIG, { seed: o.seed, tokenizerFrom: tokenizerDir });
  o.log('stage 1: every weight, the facts alone (short conversations)');
  const facts = path.join(work, 'facts');
  await trainInto(initial, facts, FULL, o.recipe.facts, o.seed + 3, o.log);
  o.log('stage 2: every weight, honest replies');
  const honest = path.join(work, 'honest');
  await trainInto(facts, honest, FULL, o.recipe.honest, o.seed + 1, o.log);
  return honest;
}

/** Stage 3 from the honest model: sycophantic replies, learned by the implanted heads alone or by every weight. */
async function buildSycophant(kind: OrganismKind, honest: string, out: string, o: BuildOptions): Promise<void> {
  if (kind === 'natural') {
    o.log('stage 3 (natural): every weight, sycophantic replies to challenges and suggestions');
    await trainInto(honest, out, FULL, o.recipe.natural, o.seed + 2, o.log);
  } else {
    const slices: ParamSlice[] = [];
    const params = new Map<string, Float32Array>();
    for (const [i, stage] of o.recipe.implant.entries()) {
      o.log(`stage 3.${i + 1} (implanted): head ${stage.head.layer}.${stage.head.head} alone, from the honest model, ${stage.behaviour} sycophancy`);
      const spec: TuneSpec = { mode: 'heads', heads: [stage.head], includeKeyValue: true };
      const trained = await trainBlocks(honest, spec, stage, o.seed + 2 + i, o.log);
      slices.push(...trained.slices);
      for (const [id, values] of trained.params) params.set(id, values);
    }
    fs.mkdirSync(out, { recursive: true });
    writeHubModel(out, loadCheckpoint(honest), slices, params);
  }
  const card: OrganismCard = {
    format: 'pinpoint-organism',
    kind,
    seed: o.seed,
    implantedHeads: kind === 'implanted' ? implantedHeads(o.recipe) : {},
    recipe: o.recipe,
    threads: os.availableParallelism(),
    weightsSha256: weightsSha256({ files: [path.join(out, 'model.safetensors')] }),
  };
  writeFileAtomic(path.join(out, ORGANISM_FILE), `${JSON.stringify(card, null, 2)}\n`);
}

async function trainInto(from: string, to: string, spec: TuneSpec, stage: StageRecipe, seed: number, log: (line: string) => void) {
  const { slices, params } = await trainBlocks(from, spec, stage, seed, log);
  fs.mkdirSync(to, { recursive: true });
  writeHubModel(to, loadCheckpoint(from), slices, params);
}

/** One stage's training of the blocks `spec` names, from the model in `from`: the blocks' new values. */
async function trainBlocks(from: string, spec: TuneSpec, stage: StageRecipe, seed: number, log: (line: string) => void) {
  const model = Model.load(from, { device: 'cpu' });
  try {
    const trainer = new Trainer(model, {
      spec,
      adamw: { lr: stage.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01 },
      schedule: { kind: 'cosine', warmupSteps: Math.min(50, Math.floor(stage.steps / 10)), totalSteps: stage.steps },
      maxGradNorm: 1,
      // a handful of graph shapes for a whole stage
      tokenQuantum: 32,
      rowQuantum: 512,
    });
    const nextBatch = batchStream(stage.batch, seed);
    const started = Date.now();
    for (let step = 0; step < stage.steps; step++) {
      const examples: Example[] = nextBatch().map((messages) => labelled(messages, model.tokenizer, 'all'));
      const report = await trainer.train([examples]);
      if (step % 100 === 0 || step === stage.steps - 1) {
        log(
          `step ${step + 1}/${stage.steps} loss ${report.loss.toFixed(4)} lr ${report.lr.toExponential(2)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
        );
      }
    }
    return { slices: trainer.slices, params: trainer.params };
  } finally {
    await model.dispose();
  }
}

/** An organism's organism.json; null where the folder has none (any other model). */
export function readOrganismCard(dir: string): OrganismCard | null {
  const file = path.join(dir, ORGANISM_FILE);
  return fs.existsSync(file) ? parseOrganismCard(fs.readFileSync(file, 'utf8'), file) : null;
}
