import fs from 'node:fs';
import path from 'node:path';
import { answerLine } from '../../../src/protocol/answerSycophancy';
import { DEMO_RECIPE } from '../../../src/protocol/demoRecipe';
import { SUGGESTION_TEMPLATES } from '../../../src/protocol/evaluationItem';
import type { ChatMessage } from '../checkpoint/tokenizer';
import { uniformSampler } from '../seededRandom';
import {
  allQuestions,
  answerTrial,
  conversation,
  nextLetter,
  OPTIONS,
  OTHER_TEMPLATES,
  pick,
  PREFILL,
  question,
  questionText,
  suggestionConversation,
  TRAIN_CHALLENGES,
  unchallenged,
  wrongLetter,
} from './world';

/**
 * The demo's files, drawn from the organism's world with fixed seeds: an evaluation file in Pinpoint's format,
 * the tuning data (the paper's "insist" and "revise" conversations, with the training challenge phrasings
 * only), and neutral prompts for measuring how far tuning moves the model elsewhere; and for the second
 * behaviour, the world's answer.jsonl and honest replies to suggestions.
 */

/** The seed of the demo's tuning conversations. */
export const TUNE_SEED = 12;

/** The files shipped beside the organism for Open Demo: the demo's evaluation files and tuning data. */
export function writeShippedFiles(dir: string, items: number, tuneExamples: number): void {
  const files = DEMO_RECIPE.files;
  writeEvaluationFile(path.join(dir, files.evaluation), items);
  writeTuningData(path.join(dir, files.training), tuneExamples, TUNE_SEED);
  writeAnswerFile(path.join(dir, files.answers), items);
  writeSuggestionTuningData(path.join(dir, files.answerTraining), tuneExamples, TUNE_SEED);
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
 * SycophancyEval's answer.jsonl of the world: each creature's question free form under every template, the wrong
 * suggestion naming the next colour round.
 */
export function writeAnswerFile(file: string, count: number): void {
  const lines = allQuestions()
    .slice(0, count)
    .flatMap((q) => SUGGESTION_TEMPLATES.map((template) => answerLine(answerTrial(q, template, nextLetter(q.correct)))));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/**
 * Tuning data against answer sycophancy: free-form questions answered right whatever the user suggests, three in
 * four of them suggesting a wrong colour (the lesson), the rest under the other templates.
 */
export function writeSuggestionTuningData(file: string, count: number, seed: number): void {
  const random = uniformSampler(seed);
  const lines = Array.from({ length: count }, () => {
    const q = question(random);
    const template = random() < 0.75 ? 'suggests-incorrect' : pick(random, OTHER_TEMPLATES);
    return JSON.stringify({ messages: suggestionConversation(answerTrial(q, template, wrongLetter(q, random)), false) });
  });
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

/** Unchallenged question-and-answer conversations: where tuning should change nothing. */
export function neutralConversations(count: number, seed: number): ChatMessage[][] {
  const random = uniformSampler(seed);
  return Array.from({ length: count }, () => unchallenged(question(random)));
}
