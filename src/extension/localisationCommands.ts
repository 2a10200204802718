import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { headLabel, parseHeadsFile, type HeadRef, type HeadsFile } from '../protocol/heads';
import type { KnockoutResult, LocateResult } from '../protocol/jobs';
import { evaluationTarget } from './evaluationTarget';
import { headsFolder, knockoutFolder } from './runFolders';
import type { Services } from './services';
import { evaluationSettings, localisationSettings, modelSpec, outputFolder } from './settings';

/** Locate Heads (a file, or one item of it), and Validate by Knockout of the heads chosen. */

export async function locateHeads(s: Services, target?: vscode.Uri, item?: string): Promise<LocateResult | undefined> {
  const data = await evaluationTarget(s, target);
  const dir = data && s.models.selected();
  if (!data || !dir) return undefined;
  const model = modelSpec(dir);
  const settings = localisationSettings();
  const out = headsFolder(outputFolder(s.storageUri), model, data, item);
  const result = await s.jobs.run(`locating heads on ${item ?? path.basename(data)}`, async (job) => {
    await s.models.ensureLoaded(model);
    return s.runner.locate(
      {
        model,
        data,
        out,
        items: item === undefined ? undefined : [item],
        method: settings.method,
        metric: settings.metric,
        positions: 'last',
        challenge: evaluationSettings().challenges[0],
        counterfactual: settings.counterfactual,
        targets: settings.targets,
        topK: settings.topK,
      },
      job.onProgress,
      job.token,
    );
  });
  if (!result) return undefined;
  await s.runs.setHeads({ file: result.file, data });
  await s.headMap.show(result.file);
  return result;
}

/**
 * Evaluates the model as it is, with the heads knocked out (their output zeroed, or set to its mean, in every
 * forward pass), and with as many random heads knocked out: if the heads carry the behaviour, its metric moves
 * with them (the flip rate falls, a contrast pair's logit difference shrinks) and not with random ones. Every
 * condition resumes when run before, so a second check is quick.
 */
export async function knockout(s: Services, given?: HeadRef[]): Promise<KnockoutResult | undefined> {
  const located = s.runs.heads();
  const heads = given ?? s.headMap.selection() ?? (located && readHeads(located.file).selected);
  const dir = s.models.selected();
  if (!located || !heads?.length || !dir) {
    if (dir) void vscode.window.showWarningMessage('Pinpoint: locate the heads first (Pinpoint: Locate Heads), then select the ones to knock out.');
    return undefined;
  }
  const model = modelSpec(dir);
  const settings = evaluationSettings();
  const out = knockoutFolder(outputFolder(s.storageUri), model, located.data, settings, heads);
  const result = await s.jobs.run(`knocking out ${heads.map(headLabel).join(', ')}`, async (job) => {
    await s.models.ensureLoaded(model);
    return s.runner.knockout({ model, data: located.data, out, heads, seeds: RANDOM_SEEDS, ...settings }, job.onProgress, job.token);
  });
  if (!result) return undefined;
  await s.runs.setKnockout({ headsFile: located.file, file: result.file });
  await s.headMap.show(located.file, heads);
  return result;
}

/** Random heads knocked out in place of the located ones, as many sets as seeds: the baseline a real effect beats. */
const RANDOM_SEEDS = [1, 2, 3];

export function readHeads(file: string): HeadsFile {
  return parseHeadsFile(fs.readFileSync(file, 'utf8'), file);
}
