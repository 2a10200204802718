import { Console } from 'node:console';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import packageJson from '../../package.json';
import { escapeControls } from '../../src/protocol/excerpt';
import {
  AddRootsRequest,
  DEVICES,
  DTYPES,
  GenerateRequest,
  LoadModelRequest,
  LogNotification,
  ROOT_OPTION,
  RunnerErrorCode,
  RuntimeInfoRequest,
  type AddRootsParams,
  type ChatMessage,
  type GenerateParams,
  type GenerateResult,
  type LoadModelParams,
  type ModelInfo,
  type RuntimeInfo,
} from '../../src/protocol/protocol';
import {
  ATTENTION_ROWS,
  AttentionRequest,
  CompareRequest,
  EvaluateRequest,
  ExportRequest,
  JobProgressNotification,
  KnockoutRequest,
  LOSS_ON,
  LocateRequest,
  SCHEDULES,
  TuneRequest,
  type AttentionParams,
  type AttentionResult,
  type CompareParams,
  type CompareResult,
  type EvaluateParams,
  type EvaluateResult,
  type ExportParams,
  type ExportResult,
  type JobProgress,
  type KnockoutParams,
  type KnockoutResult,
  type LocateParams,
  type LocateResult,
  type ModelSpec,
  type TuneParams,
  type TuneResult,
} from '../../src/protocol/jobs';
import { LOCATE_METHODS, LOCATE_METRICS, PAIR_SIDES, POSITIONS, type HeadRef } from '../../src/protocol/heads';
import { KNOCKOUT_FILE } from '../../src/protocol/evaluation';
import { isContrastItem, isSuggestionItem, type EvalItem } from '../../src/protocol/evaluationItem';
import { CheckpointError } from './checkpoint/safetensors';
import { exportTuned } from './checkpoint/exportTuned';
import { runComparison } from './comparison/compareJob';
import { readEvaluationFile } from './evaluation/evaluationFile';
import { runEvaluation } from './evaluation/runEvaluation';
import { FrameCheck, FrameError, MESSAGE_DECODER } from './frameCheck';
import { attentionPattern } from './localisation/attentionPattern';
import { knockout } from './localisation/knockout';
import { locate, writeHeadsFile } from './localisation/locate';
import { challengedPrompt, suggestionPrompts } from './localisation/patchingPrompts';
import type { ModelTokenizer } from './checkpoint/tokenizer';
import { withOutputLock } from './outputLock';
import { Roots } from './roots';
import { greedyGenerate } from './runtime/generate';
import { Model } from './runtime/model';
import { cudaProviderInstalled, DeviceError } from './runtime/session';
import { ADAMW_DEFAULTS } from './training/adamw';
import { DataError } from './training/conversations';
import { tune, TuneError } from './training/tuneRun';

/** `pinpoint serve`: the runner as the extension's child process, speaking JSON-RPC (src/protocol) on stdin/stdout. */

export const SERVE_USAGE = `serve [${ROOT_OPTION} <folder>]...
    speak JSON-RPC on stdin/stdout (used by the VS Code extension); with ${ROOT_OPTION}, every path a request names must lie under one`;

/**
 * Runs until stdin closes (exit code 0), the stream breaks or its parent goes away (1), and then ends the process
 * at once, even mid-job: what a job wrote is on disk already, as jobs write each batch, step and file whole.
 */
export function serve(args: string[]): Promise<number> {
  const end = ending();
  // first, so that a parent gone while the rest starts is noticed too
  watchParent(end);
  const { values } = parseArgs({ args, options: { root: { type: 'string', multiple: true } } });
  // stdout carries the JSON-RPC stream; anything else written there would corrupt it
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  const roots = new Roots(values.root ?? []);
  if (!roots.restricted) console.error(`pinpoint serve: no ${ROOT_OPTION} given, so requests may name any path`);
  const reader = new StreamMessageReader(process.stdin.pipe(new FrameCheck()), { contentTypeDecoder: MESSAGE_DECODER });
  const writer = new StreamMessageWriter(process.stdout);
  const connection = createMessageConnection(reader, writer);
  const runner = new Runner(connection, roots);
  connection.onRequest(RuntimeInfoRequest, () => answer(async () => runtimeInfo()));
  connection.onRequest(AddRootsRequest, (params) => answer(async () => addRoots(roots, params)));
  connection.onRequest(LoadModelRequest, (params) => answer(() => runner.load(params)));
  connection.onRequest(GenerateRequest, (params, token) => answer(() => runner.generate(params, token)));
  connection.onRequest(EvaluateRequest, (params, token) => answer(() => runner.evaluate(params, token)));
  connection.onRequest(LocateRequest, (params, token) => answer(() => runner.locate(params, token)));
  connection.onRequest(AttentionRequest, (params) => answer(() => runner.attention(params)));
  connection.onRequest(TuneRequest, (params, token) => answer(() => runner.tune(params, token)));
  connection.onRequest(KnockoutRequest, (params, token) => answer(() => runner.knockout(params, token)));
  connection.onRequest(CompareRequest, (params, token) => answer(() => runner.compare(params, token)));
  connection.onRequest(ExportRequest, (params, token) => answer(() => runner.export(params, token)));
  reader.onClose(() => end(0));
  reader.onError((error) => end(1, readFailure(error)));
  writer.onError(([error]) => end(1, `writing to stdout failed: ${error.message}`));
  connection.listen();
  // the process ends in `end`
  return new Promise(() => undefined);
}

/** The first end wins: a broken stream also closes, and its reason is the one to keep. */
function ending(): (code: number, why?: string) => void {
  let ended = false;
  return (code, why) => {
    if (ended) return;
    ended = true;
    if (why === undefined) process.exit(code);
    // exits once the message is out, as a pipe may take it asynchronously
    process.stderr.write(`pinpoint serve: ${displayable(why)}\n`, () => process.exit(code));
  };
}

function readFailure(error: Error): string {
  return error instanceof FrameError ? `malformed JSON-RPC frame: ${error.message}` : `reading stdin failed: ${error.message}`;
}

/** How often the parent is looked for: its going away does not always close stdin (a grandparent may hold it). */
const PARENT_POLL_MS = 500;

/** An orphan is adopted by init or a subreaper, so a parent id other than the first means the parent is gone. */
function watchParent(end: (code: number, why: string) => void): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) end(1, `its parent process (${parent}) went away`);
  }, PARENT_POLL_MS).unref();
}

function addRoots(roots: Roots, params: AddRootsParams): void {
  check(isStringList(params?.roots) && params.roots.every((root) => root !== ''), 'runner/addRoots: roots must be a list of paths');
  roots.add(params.roots);
}

function runtimeInfo(): RuntimeInfo {
  return {
    runnerVersion: packageJson.version,
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- read at run time: the version loaded, not one bundled
    onnxruntimeVersion: (require('onnxruntime-node/package.json') as { version: string }).version,
    cudaProviderInstalled: cudaProviderInstalled(),
    node: process.version,
    pid: process.pid,
  };
}

/** Holds the one loaded model and runs jobs on it one at a time. */
class Runner {
  private model: Model | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly connection: MessageConnection,
    private readonly roots: Roots,
  ) {}

  load(params: LoadModelParams): Promise<ModelInfo> {
    this.roots.check('model/load', { dir: params?.dir });
    checkLoadParams(params);
    return this.exclusive(async () => {
      // the old model goes first, so two models never hold (GPU) memory at once
      await this.unload();
      const model = Model.load(params.dir, { device: params.device, dtype: params.dtype });
      try {
        const placement = await model.placement();
        this.model = model;
        const { config } = model;
        this.log(
          `loaded ${model.checkpoint.dir} (${config.modelType}, ${model.dtype}) on ${placement.provider}: ${JSON.stringify(placement.nodesByProvider)}`,
        );
        return {
          dir: model.checkpoint.dir,
          modelType: config.modelType,
          layers: config.numLayers,
          heads: config.numHeads,
          kvHeads: config.numKvHeads,
          headDim: config.headDim,
          hiddenSize: config.hiddenSize,
          vocabSize: config.vocabSize,
          provider: placement.provider,
          nodesByProvider: placement.nodesByProvider,
          dtype: model.dtype,
        };
      } catch (err) {
        await model.dispose();
        throw err;
      }
    });
  }

  /** greedyGenerate cannot stop between steps, so cancellation is honoured before the batch and after it. */
  generate(params: GenerateParams, token: CancellationToken): Promise<GenerateResult> {
    checkGenerateParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      const model = this.loaded();
      const prompts = params.messages.map((conversation, i) => encodeConversation(model, conversation, i));
      const started = performance.now();
      const ids = await greedyGenerate(model, prompts, { maxNewTokens: params.maxNewTokens });
      throwIfCancelled(token);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      this.log(`model/generate: ${ids.length} conversation(s), ${ids.map((row) => row.length).join('+')} new tokens in ${seconds} s`);
      return { texts: ids.map((row) => model.tokenizer.decode(row, { skipSpecialTokens: true })), ids };
    });
  }

  /** The challenge protocol over an evaluation file. */
  evaluate(params: EvaluateParams, token: CancellationToken): Promise<EvaluateResult> {
    this.checkJobPaths('job/evaluate', params);
    checkEvaluateParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      const data = readEvaluationFile(params.data);
      const items = chosenItems(data.items, params.items, params.data);
      this.progress({ job: params.job, message: `${items.length} items`, done: 0, total: items.length });
      const model = await this.use(params.model);
      const summary = await runEvaluation({
        model,
        modelDir: params.model.dir,
        judge: null,
        data,
        items,
        outDir: params.out,
        challenges: params.challenges,
        maxNewTokens: params.maxNewTokens,
        batchSize: params.batchSize,
        maxPromptTokens: params.maxPromptTokens,
        onProgress: this.itemProgress(params.job, token),
      });
      return { out: params.out, summary };
    });
  }

  /** The located heads knocked out (zero and mean) and random ones, each condition a resumable evaluation. */
  knockout(params: KnockoutParams, token: CancellationToken): Promise<KnockoutResult> {
    this.checkJobPaths('job/knockout', params);
    checkKnockoutParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      const data = readEvaluationFile(params.data);
      const items = chosenItems(data.items, undefined, params.data);
      const model = await this.use(params.model);
      const report = await knockout({
        model,
        modelDir: params.model.dir,
        data,
        items,
        heads: params.heads,
        outDir: params.out,
        challenges: params.challenges,
        seeds: params.seeds,
        batchSize: params.batchSize,
        maxNewTokens: params.maxNewTokens,
        // progress over every condition's items; a stop takes effect after the batch running, which stays on disk
        onProgress: (p) => {
          const done = p.stageIndex * p.items + p.done;
          this.progress({ job: params.job, message: `evaluating ${p.stage}: ${p.done}/${p.items} items`, done, total: p.stages * p.items });
          throwIfCancelled(token);
        },
      });
      return { file: path.join(params.out, KNOCKOUT_FILE), report };
    });
  }

  /**
   * Both models through the evaluation, and the KL shift between them (comparison/compareJob.ts); the model held is
   * used as the base when it is the same checkpoint, device and dtype.
   */
  compare(params: CompareParams, token: CancellationToken): Promise<CompareResult> {
    this.roots.check('job/compare', {
      'base.dir': params?.base?.dir,
      'tuned.dir': params?.tuned?.dir,
      data: params?.data,
      'out.base': params?.out?.base,
      'out.tuned': params?.out?.tuned,
    });
    checkCompareParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      const base = await this.use(params.base);
      return runComparison(params, base, (p) => {
        this.progress({ job: params.job, ...p });
        throwIfCancelled(token);
      });
    });
  }

  /** Localisation scores of every head; heads.json is written to `out`. */
  locate(params: LocateParams, token: CancellationToken): Promise<LocateResult> {
    this.checkJobPaths('job/locate', params);
    checkLocateParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      const items = chosenItems(readEvaluationFile(params.data).items, params.items, params.data);
      this.progress({ job: params.job, message: `${items.length} items`, done: 0, total: items.length });
      const model = await this.use(params.model);
      const { method, metric, positions, challenge, counterfactual, targets, topK } = params;
      return withOutputLock(params.out, 'localisation', async () => {
        const heads = await locate(model, items, { method, metric, positions, challenge, counterfactual, targets, topK }, (done, total) => {
          this.progress({ job: params.job, message: `${done}/${total} item passes`, done, total });
          throwIfCancelled(token);
        });
        return { file: writeHeadsFile(params.out, heads), heads };
      });
    });
  }

  /**
   * One head's attention on an item's prompt as localisation builds it: a question's correct answer, then the
   * follow-up; a contrast pair's prompt or counterfactual, raw text as the pair gives them.
   */
  attention(params: AttentionParams): Promise<AttentionResult> {
    this.roots.check('model/attention', { 'model.dir': params?.model?.dir, data: params?.data });
    checkAttentionParams(params);
    return this.exclusive(async () => {
      const [item] = chosenItems(readEvaluationFile(params.data).items, [params.item], params.data);
      const prompt = attentionPrompt(item, params);
      const model = await this.use(params.model);
      const ids = prompt(model.tokenizer);
      const { tokens, weights } = await attentionPattern(model, ids, params.layer, params.head);
      const firstRow = Math.max(0, tokens.length - ATTENTION_ROWS);
      return { tokens, firstRow, weights: Array.from(weights.subarray(firstRow * tokens.length)) };
    });
  }

  /** Pinpoint tuning of the given heads; the held model is dropped first, as tuning loads its own. */
  tune(params: TuneParams, token: CancellationToken): Promise<TuneResult> {
    this.checkJobPaths('job/tune', params);
    checkTuneParams(params);
    return this.exclusive(async () => {
      throwIfCancelled(token);
      await this.unload();
      const h = params.hyperparameters;
      const result = await tune(
        {
          model: params.model,
          data: params.data,
          out: params.out,
          spec: { mode: 'heads', heads: params.heads, includeKeyValue: params.includeKeyValue },
          steps: h.steps,
          batchSize: h.batchSize,
          gradAccum: h.gradAccum,
          adamw: { ...ADAMW_DEFAULTS, lr: h.learningRate, weightDecay: h.weightDecay },
          schedule: h.schedule,
          warmupSteps: h.warmupSteps,
          maxGradNorm: h.maxGradNorm,
          seed: h.seed,
          saveEvery: h.saveEvery,
          lossOn: h.lossOn,
          onBadLine: 'skip',
        },
        params.resume,
        (step) => {
          this.progress({
            job: params.job,
            message: `step ${step.step}/${step.steps}, loss ${step.loss.toFixed(4)}`,
            done: step.step,
            total: step.steps,
            tune: step,
          });
          throwIfCancelled(token);
        },
      );
      return { checkpoint: result.dir, losses: result.losses, provider: result.provider, skipped: result.skipped };
    });
  }

  /** Copies a tuning run's newest checkpoint, less the optimizer state that only resuming needs. */
  export(params: ExportParams, token: CancellationToken): Promise<ExportResult> {
    this.roots.check('job/export', { run: params?.run, to: params?.to });
    check(typeof params?.run === 'string' && params.run !== '', 'job/export: run must be the folder of a tuning run');
    check(typeof params.to === 'string' && params.to !== '', 'job/export: to must be a folder');
    return this.exclusive(async () => {
      throwIfCancelled(token);
      return exportTuned(params.run, params.to, (file, done, total) => this.progress({ job: params.job, message: file, done, total }));
    });
  }

  /** Paths are checked before anything else, so that a refusal tells nothing about what lies outside the roots. */
  private checkJobPaths(method: string, params: { model?: ModelSpec; data?: string; out?: string }): void {
    this.roots.check(method, { 'model.dir': params?.model?.dir, data: params?.data, out: params?.out });
  }

  /** The model a job names: the one held when it is the same checkpoint, device and dtype, else loaded in its place. */
  private async use(spec: ModelSpec): Promise<Model> {
    const held = this.model;
    if (held && held.checkpoint.dir === path.resolve(spec.dir) && held.device === spec.device && held.dtype === spec.dtype) return held;
    await this.unload();
    this.model = Model.load(spec.dir, { device: spec.device, dtype: spec.dtype });
    this.log(`loaded ${this.model.checkpoint.dir} (${spec.dtype}) for a job`);
    return this.model;
  }

  /** Progress after each batch of an evaluation, where a stop takes effect: the batch's results are on disk by then. */
  private itemProgress(job: string, token: CancellationToken): (p: { done: number; total: number }) => void {
    return (p) => {
      this.progress({ job, message: `${p.done}/${p.total} items`, done: p.done, total: p.total });
      throwIfCancelled(token);
    };
  }

  /** A notification fails only when the stream has ended, and the process with it. */
  private progress(progress: JobProgress): void {
    this.connection.sendNotification(JobProgressNotification, progress).catch(() => undefined);
  }

  private loaded(): Model {
    if (!this.model) throw new RangeError('no model is loaded; load one with model/load first');
    return this.model;
  }

  private async unload(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    await model?.dispose();
  }

  /** Jobs wait for the one before, so that loading never disposes a model that a generation is still running. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private log(message: string): void {
    this.connection.sendNotification(LogNotification, { level: 'info', message }).catch(() => undefined);
  }
}

function encodeConversation(model: Model, conversation: ChatMessage[], index: number): number[] {
  try {
    return model.tokenizer.encodeChat(conversation, { addGenerationPrompt: true });
  } catch (err) {
    // chat templates raise on conversations they do not accept (e.g. roles that do not alternate)
    throw new RangeError(`conversation ${index}: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs a request, turning what it throws into the ResponseError the client sees. */
async function answer<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    throw toResponseError(err);
  }
}

function toResponseError(err: unknown): ResponseError<void> {
  if (err instanceof ResponseError) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  const badInput = [CheckpointError, RangeError, TuneError, DataError].some((kind) => error instanceof kind);
  const message = displayable(error.message);
  if (badInput) return new ResponseError(RunnerErrorCode.BadInput, message);
  if (error instanceof DeviceError) return new ResponseError(RunnerErrorCode.Device, message);
  // anything else is a runner bug: keep the stack in the runner's log, which the extension shows
  console.error(displayable(error.stack ?? message));
  return new ResponseError(RunnerErrorCode.Internal, message);
}

/** Messages may quote a file (a JSON parse error quotes its line): no line of one is longer than this. */
const MAX_MESSAGE_LINE = 300;
const MAX_MESSAGE_LINES = 30;

/**
 * A message as the client may show it, in a notification or a terminal: control characters escaped, and each of
 * its lines, and their number, bounded, whatever a file put into it.
 */
function displayable(message: string): string {
  const lines = escapeControls(message).split('\n');
  const kept = lines.slice(0, MAX_MESSAGE_LINES).map((line) => (line.length > MAX_MESSAGE_LINE ? `${line.slice(0, MAX_MESSAGE_LINE)}…` : line));
  if (lines.length > MAX_MESSAGE_LINES) kept.push(`… and ${lines.length - MAX_MESSAGE_LINES} more lines`);
  return kept.join('\n');
}

function throwIfCancelled(token: CancellationToken): void {
  if (token.isCancellationRequested) throw new ResponseError(RunnerErrorCode.Cancelled, 'the request was cancelled');
}

/** Params come from another process as JSON, so their types are checked rather than trusted. */
function checkLoadParams(params: LoadModelParams): void {
  check(typeof params?.dir === 'string' && params.dir !== '', 'model/load: dir must be the path of a checkpoint folder');
  checkOneOf(params.device, DEVICES, 'model/load: device');
  checkOneOf(params.dtype, DTYPES, 'model/load: dtype');
}

function checkGenerateParams(params: GenerateParams): void {
  check(Array.isArray(params?.messages) && params.messages.length > 0, 'model/generate: messages must list at least one conversation');
  params.messages.forEach((conversation, i) => {
    check(Array.isArray(conversation) && conversation.length > 0, `model/generate: conversation ${i} must list at least one message`);
    check(conversation.every(isChatMessage), `model/generate: every message of conversation ${i} needs a string role and content`);
  });
  const { maxNewTokens } = params;
  check(
    Number.isSafeInteger(maxNewTokens) && maxNewTokens > 0,
    `model/generate: maxNewTokens must be a positive integer (got ${JSON.stringify(maxNewTokens)})`,
  );
}

function isChatMessage(message: unknown): message is ChatMessage {
  const m = message as Partial<ChatMessage> | null;
  return typeof m?.role === 'string' && typeof m.content === 'string';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new RangeError(message);
}

/** Checks a value against the protocol's list of its type, which the message then names. */
function checkOneOf<T>(value: unknown, allowed: readonly T[], what: string): asserts value is T {
  check(allowed.includes(value as T), `${what} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
}

/** The items a job asked for by id, in the file's order; every id must name an item of the file. */
function chosenItems(items: EvalItem[], ids: string[] | undefined, file: string): EvalItem[] {
  check(items.length > 0, `${file} has no item that can be run`);
  if (ids === undefined) return items;
  const known = new Set(items.map((item) => item.id));
  const unknown = ids.filter((id) => !known.has(id));
  check(unknown.length === 0, `${file} has no item ${unknown.map((id) => JSON.stringify(id)).join(', ')}`);
  const wanted = new Set(ids);
  return items.filter((item) => wanted.has(item.id));
}

function checkModelSpec(spec: ModelSpec, method: string): void {
  check(typeof spec?.dir === 'string' && spec.dir !== '', `${method}: model.dir must be the path of a checkpoint folder`);
  checkOneOf(spec.device, DEVICES, `${method}: model.device`);
  checkOneOf(spec.dtype, DTYPES, `${method}: model.dtype`);
}

function checkJob(params: { job: string; data: string; out: string; items?: string[] }, method: string): void {
  check(typeof params?.job === 'string' && params.job !== '', `${method}: job must be a non-empty id`);
  checkDataFile(params.data, method);
  check(typeof params.out === 'string' && params.out !== '', `${method}: out must be a folder`);
  check(params.items === undefined || isStringList(params.items), `${method}: items must be a list of item ids`);
}

function checkDataFile(data: string, method: string): void {
  check(typeof data === 'string' && fs.existsSync(data), `${method}: data must name an existing file (got ${JSON.stringify(data)})`);
}

interface GenerationParams {
  challenges: string[];
  maxNewTokens: number;
  batchSize: number;
}

function checkGeneration(params: GenerationParams, method: string): void {
  check(isStringList(params.challenges) && params.challenges.length > 0, `${method}: challenges must list at least one phrasing`);
  checkCount(params.maxNewTokens, `${method}: maxNewTokens`);
  checkCount(params.batchSize, `${method}: batchSize`);
}

function checkEvaluateParams(params: EvaluateParams): void {
  checkJob(params, 'job/evaluate');
  checkModelSpec(params.model, 'job/evaluate');
  checkGeneration(params, 'job/evaluate');
  if (params.maxPromptTokens !== undefined) checkCount(params.maxPromptTokens, 'job/evaluate: maxPromptTokens');
}

function checkKnockoutParams(params: KnockoutParams): void {
  checkJob(params, 'job/knockout');
  checkModelSpec(params.model, 'job/knockout');
  checkGeneration(params, 'job/knockout');
  check(isHeadList(params.heads), 'job/knockout: heads must be a non-empty list of {layer, head}');
  check(Array.isArray(params.seeds) && params.seeds.every(Number.isSafeInteger), 'job/knockout: seeds must be a list of integers');
}

function checkCompareParams(params: CompareParams): void {
  check(typeof params?.out === 'object' && params.out !== null, 'job/compare: out must name the base and tuned folders');
  checkJob({ ...params, out: params.out.base }, 'job/compare');
  check(
    typeof params.out.tuned === 'string' && params.out.tuned !== '' && params.out.tuned !== params.out.base,
    'job/compare: out.tuned must be a folder other than out.base',
  );
  checkModelSpec(params.base, 'job/compare: base');
  checkModelSpec(params.tuned, 'job/compare: tuned');
  checkGeneration(params, 'job/compare');
}

function checkLocateParams(params: LocateParams): void {
  checkJob(params, 'job/locate');
  checkModelSpec(params.model, 'job/locate');
  checkOneOf(params.method, LOCATE_METHODS, 'job/locate: method');
  checkOneOf(params.metric, LOCATE_METRICS, 'job/locate: metric');
  checkOneOf(params.positions, POSITIONS, 'job/locate: positions');
  check(typeof params.challenge === 'string' && params.challenge !== '', 'job/locate: challenge must be a phrasing');
  check(typeof params.counterfactual === 'string' && params.counterfactual !== '', 'job/locate: counterfactual must be a phrasing');
  check(
    isStringList(params.targets) && params.targets.length === 2 && params.targets.every((t) => t !== ''),
    'job/locate: targets must be two words',
  );
  if (params.topK !== undefined) checkCount(params.topK, 'job/locate: topK');
}

/**
 * The prompt model/attention shows a pattern on, checked before the model loads: a question's as localisation
 * challenges it (its correct answer, then the follow-up), one of a contrast pair's raw prompts, or an answer.jsonl
 * trial's own prompt (reference) or its plain question (counterfactual).
 */
function attentionPrompt(item: EvalItem, params: AttentionParams): (tokenizer: ModelTokenizer) => number[] {
  if (isContrastItem(item)) {
    checkOneOf(params.side, PAIR_SIDES, `model/attention: side (${JSON.stringify(item.id)} is a contrast pair)`);
    const text = params.side === 'reference' ? item.prompt : item.counterfactual;
    return (tokenizer) => tokenizer.encode(text);
  }
  if (isSuggestionItem(item)) {
    checkOneOf(params.side, PAIR_SIDES, `model/attention: side (${JSON.stringify(item.id)} is a trial of answer.jsonl)`);
    const side = params.side === 'reference' ? 'reference' : 'counterfactual';
    return (tokenizer) => suggestionPrompts(tokenizer, item)[side].ids;
  }
  const { followUp } = params;
  check(typeof followUp === 'string' && followUp !== '', 'model/attention: followUp must be a phrasing');
  return (tokenizer) => challengedPrompt(tokenizer, item, followUp).ids;
}

function checkAttentionParams(params: AttentionParams): void {
  checkModelSpec(params?.model, 'model/attention');
  checkDataFile(params.data, 'model/attention');
  check(typeof params.item === 'string' && params.item !== '', 'model/attention: item must be an item id');
  check(Number.isSafeInteger(params.layer) && Number.isSafeInteger(params.head), 'model/attention: layer and head must be integers');
}

function checkTuneParams(params: TuneParams): void {
  checkJob(params, 'job/tune');
  checkModelSpec(params.model, 'job/tune');
  check(isHeadList(params.heads), 'job/tune: heads must be a non-empty list of {layer, head}');
  const h = params.hyperparameters;
  for (const key of ['steps', 'batchSize', 'gradAccum', 'saveEvery'] as const) checkCount(h?.[key], `job/tune: hyperparameters.${key}`);
  for (const key of ['learningRate', 'weightDecay', 'maxGradNorm', 'warmupSteps', 'seed'] as const) {
    check(Number.isFinite(h[key]) && h[key] >= 0, `job/tune: hyperparameters.${key} must be a non-negative number (got ${JSON.stringify(h[key])})`);
  }
  check(h.learningRate > 0, 'job/tune: hyperparameters.learningRate must be positive');
  checkOneOf(h.schedule, SCHEDULES, 'job/tune: hyperparameters.schedule');
  checkOneOf(h.lossOn, LOSS_ON, 'job/tune: hyperparameters.lossOn');
}

function checkCount(value: number, what: string): void {
  check(Number.isSafeInteger(value) && value > 0, `${what} must be a positive integer (got ${JSON.stringify(value)})`);
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'string');
}

function isHeadList(value: unknown): value is HeadRef[] {
  return (
    Array.isArray(value) && value.length > 0 && value.every((h: Partial<HeadRef> | null) => Number.isInteger(h?.layer) && Number.isInteger(h?.head))
  );
}
