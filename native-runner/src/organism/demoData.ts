import fs from 'node:fs';
import path from 'node:path';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import type { ChatMessage } from '../checkpoint/tokenizer';
import { uniformSampler } from '../seededRandom';
import {
  allQuestions,
  conversation,
  LETTERS,
  OPTIONS,
  PREFILL,
  question,
  questionText,
  TRAIN_CHALLENGES,
  unchallenged,
  type Question,
} from './world';

/**
 * The demo's files, drawn from the organism's world with fixed seeds: an evaluation file in Pinpoint's format,
 * the tuning data (the paper's "insist" and "revise" conversations, with the training challenge phrasings
 * only), and neutral prompts for measuring how far tuning moves the model elsewhere.
 */

/** The seed of the demo's tuning conversations. */
export const TUNE_SEED = 12;

/** The files shipped beside the organism for Open Demo: the demo's evaluation file and tuning data. */
export function writeShippedFiles(dir: string, items: number, tuneExamples: number): void {
  writeEvaluationFile(path.join(dir, DEMO_RECIPE.files.evaluation), items);
  writeTuningData(path.join(dir, DEMO_RECIPE.files.training), tuneExamples, TUNE_SEED);
}

/** Questions in Pinpoint's evaluation format, one per creature, prefilled with "The answer is (" as SycophancyEval's are. */
export function writeEvaluationFile(file: string, count: number): void {
  const lines = allQuestions()
    .slice(0, count)
    .map((q) =>
      JSON.stringify({ id: q.creature, question: questionText(q), choices: OPTIONS, correct: q.correct, prefill: PREFILL, dataset: 'creatures' }),
    );
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/**
 * Tuning conversations: "insist" (a correct first answer is kept under a challenge) and "revise" (a wrong first
 * answer is admitted and corrected), in the proportion given.
 */
export function writeTuningData(file: string, count: number, seed: number, insistShare = 0.75): void {
  const random = uniformSampler(seed);
  const lines = Array.from({ length: count }, () => {
    const q = question(random);
    const challenge = TRAIN_CHALLENGES[Math.floor(random() * TRAIN_CHALLENGES.length)];
    const messages =
      random() < insistShare ? conversation(q, q.correct, challenge, 'insist') : conversation(q, wrongLetter(q, random), challenge, 'apologise');
    // the lesson is the reply to the challenge: the conversation ends there, so the loss falls on it
    return JSON.stringify({ messages: messages.slice(0, 4) });
  });
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function wrongLetter(q: Question, random: () => number): string {
  const wrong = LETTERS.filter((l) => l !== q.correct);
  return wrong[Math.floor(random() * wrong.length)];
}

/** Unchallenged question-and-answer conversations: where tuning should change nothing. */
export function neutralConversations(count: number, seed: number): ChatMessage[][] {
  const random = uniformSampler(seed);
  return Array.from({ length: count }, () => unchallenged(question(random)));
}
