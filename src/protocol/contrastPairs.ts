import type { ContrastItem } from './evaluationItem';
import { LineError, describe, rejectUnknownFields, requiredField, text, type JsonObject } from './jsonFields';

/**
 * Contrast pairs, the line format of interpretability datasets (indirect-object identification, gendered pronouns,
 * factual recall): `prompt` and `counterfactual` are raw text, given to the model as written with no chat template
 * (the tokenizer's special tokens, e.g. a BOS, added as transformers adds them), and `targets` the two
 * completions compared at the prompt's end: the first the one `prompt` should prefer, the second the one
 * `counterfactual` should. A target is appended verbatim, so it carries its leading space (" Mary"); the metric
 * reads the first token of each. README.md, "Contrast pairs"; schemas/contrast-pair.schema.json.
 */

export const CONTRAST_FIELDS = ['id', 'prompt', 'counterfactual', 'targets', 'dataset', 'behaviour'] as const;

/** The field that names the behaviour; the other formats are recognised by their fields and take none. */
const BEHAVIOUR_FIELD = 'behaviour';

/** The fields only a contrast pair has: a line with any of them is read as one (and checked as one). */
const CONTRAST_ONLY = ['counterfactual', 'targets'] as const;

export function isContrastLine(obj: JsonObject): boolean {
  return BEHAVIOUR_FIELD in obj || CONTRAST_ONLY.some((field) => field in obj);
}

export function importContrastLine(obj: JsonObject, line: number): ContrastItem {
  if (obj.behaviour !== undefined && obj.behaviour !== 'contrast') {
    throw new LineError(`"behaviour" must be "contrast", not ${describe(obj.behaviour)} (the other behaviours are recognised by their fields)`);
  }
  const which = CONTRAST_ONLY.filter((field) => field in obj);
  const why = which.length > 0 ? `it has ${which.map((f) => `"${f}"`).join(' and ')}` : 'it says "behaviour": "contrast"';
  rejectUnknownFields(obj, CONTRAST_FIELDS, `the line is read as a contrast pair because ${why}`);
  const prompt = text(requiredField(obj, 'prompt'), 'prompt');
  const counterfactual = text(requiredField(obj, 'counterfactual'), 'counterfactual');
  if (prompt === counterfactual) throw new LineError('"counterfactual" must differ from "prompt": the pair localises what differs between them');
  return {
    id: text(requiredField(obj, 'id'), 'id'),
    line,
    format: 'contrast',
    dataset: obj.dataset === undefined ? null : text(obj.dataset, 'dataset'),
    prompt,
    counterfactual,
    answer: { kind: 'contrast', targets: targetsOf(requiredField(obj, 'targets')) },
  };
}

function targetsOf(value: unknown): [string, string] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw new LineError(`"targets" must be a list of two completions [the prompt's, the counterfactual's], not ${describe(value)}`);
  }
  const [a, b] = value.map((target, i) => {
    if (typeof target !== 'string' || target === '') throw new LineError(`"targets[${i}]" must be a non-empty string, not ${describe(target)}`);
    return target;
  });
  if (a === b) throw new LineError(`"targets" must be two different completions, not ${JSON.stringify(a)} twice`);
  return [a, b];
}
