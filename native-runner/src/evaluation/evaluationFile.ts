import crypto from 'node:crypto';
import fs from 'node:fs';
import type { LineProblem } from '../../../src/protocol/evaluation';
import { parseEvaluationText, type ParsedEvaluation } from '../../../src/protocol/evaluationFile';

/** An evaluation file read from disk, parsed by the protocol's parser (the one the editor marks problems with). */

export interface EvaluationFile extends ParsedEvaluation {
  file: string;
  /** of the file's bytes, so that a resumed run knows it reads the same items */
  sha256: string;
}

export function describeProblem(problem: LineProblem): string {
  return `${problem.file}:${problem.line}: ${problem.reason}`;
}

export function readEvaluationFile(file: string): EvaluationFile {
  const bytes = fs.readFileSync(file);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  return { file, sha256, ...parseEvaluationText(bytes.toString('utf8'), file) };
}
