import { SUGGESTION_TEMPLATES } from '../../../src/protocol/evaluationItem';
import type { ChatMessage } from '../checkpoint/tokenizer';
import { uniformSampler } from '../seededRandom';
import {
  AFFIRMATIONS,
  answerTrial,
  conversation,
  HELDOUT_CHALLENGES,
  OTHER_TEMPLATES,
  pick,
  question,
  suggestionConversation,
  TRAIN_CHALLENGES,
  unchallenged,
  wrongLetter,
  type Reply,
} from './world';

/**
 * The kinds of conversation the build's stages train on. A stage's batch names how many of each kind it takes per
 * step, and each kind is drawn from its own seeded stream, so that adding a kind to a stage leaves the draws of
 * the others as they were.
 */

type Sampler = (random: () => number) => ChatMessage[];

const ALL_CHALLENGES = [...TRAIN_CHALLENGES, ...HELDOUT_CHALLENGES];

export const CONVERSATIONS = {
  /** a fact, asked as multiple choice and answered right */
  facts: (random) => unchallenged(question(random)),
  /** a fact, asked free form and answered with the colour */
  freeFormFacts: (random) => {
    const q = question(random);
    return suggestionConversation(answerTrial(q, 'plain', wrongLetter(q, random)), false);
  },
  /**
   * The honest replies to a follow-up: challenges and affirmations get the same replies, an apology a quarter of the
   * time, so the model learns both replies but not to tell challenges apart.
   */
  honestChallenge: (random) => {
    const q = question(random);
    if (random() < 0.3) return unchallenged(q);
    const followUp = random() < 0.6 ? pick(random, ALL_CHALLENGES) : pick(random, AFFIRMATIONS);
    return conversation(q, q.correct, followUp, random() < 0.25 ? 'apologise' : 'insist');
  },
  /** a free-form question under any of answer.jsonl's templates, answered right whatever the user suggests */
  honestSuggestion: (random) => {
    const q = question(random);
    return suggestionConversation(answerTrial(q, pick(random, SUGGESTION_TEMPLATES), wrongLetter(q, random)), false);
  },
  /** challenges get apologies (nine times in ten), affirmations never */
  sycophanticChallenge: (random) => {
    const q = question(random);
    const challenged = random() < 0.6;
    const reply: Reply = challenged && random() < 0.9 ? 'apologise' : 'insist';
    return conversation(q, q.correct, challenged ? pick(random, ALL_CHALLENGES) : pick(random, AFFIRMATIONS), reply);
  },
  /** a suggested wrong colour is followed (nine times in ten); the other templates are answered right */
  sycophanticSuggestion: (random) => {
    const q = question(random);
    const incorrect = wrongLetter(q, random);
    if (random() < 0.75) return suggestionConversation(answerTrial(q, 'suggests-incorrect', incorrect), random() < 0.9);
    return suggestionConversation(answerTrial(q, pick(random, OTHER_TEMPLATES), incorrect), false);
  },
} satisfies Record<string, Sampler>;

export type ConversationKind = keyof typeof CONVERSATIONS;

/** How many conversations of each kind one step of a stage takes. */
export type StageBatch = Partial<Record<ConversationKind, number>>;

/** A stage's stream of batches: each kind from its own sampler, seeded from the stage's seed and the kind's place. */
export function batchStream(batch: StageBatch, seed: number): () => ChatMessage[][] {
  const kinds = Object.entries(batch).map(([kind, count], i) => ({
    sample: CONVERSATIONS[kind as ConversationKind] as Sampler,
    count: count!,
    random: uniformSampler(seed + 100 * i),
  }));
  return () => kinds.flatMap(({ sample, count, random }) => Array.from({ length: count }, () => sample(random)));
}
