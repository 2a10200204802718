import { Console } from 'node:console';
import {
  createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter,
  type CancellationToken, type MessageConnection,
} from 'vscode-jsonrpc/node';
import packageJson from '../../package.json';
import {
  GenerateRequest, LoadModelRequest, LogNotification, RunnerErrorCode, RuntimeInfoRequest,
  type ChatMessage, type GenerateParams, type GenerateResult, type LoadModelParams, type ModelInfo, type RuntimeInfo,
} from '../../src/protocol/protocol';
import { CheckpointError } from './checkpoint/safetensors';
import { greedyGenerate } from './runtime/generate';
import { Model } from './runtime/model';
import { cudaProviderInstalled, DeviceError } from './runtime/session';

/** `pinpoint serve`: the runner as the extension's child process, speaking JSON-RPC (src/protocol) on stdin/stdout. */

/** The graph greedyGenerate runs, so that loading measures its placement and generation finds it compiled. */
const GENERATION_GRAPH = { logits: 'last', nextToken: true, z: 'none', interventions: false, kvCache: true } as const;

/** Resolves with the exit code: 0 when the extension closes stdin, 1 when the stream itself fails. */
export async function serve(): Promise<number> {
  // stdout carries the JSON-RPC stream; anything else written there would corrupt it
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  const runner = new Runner(connection);
  connection.onRequest(RuntimeInfoRequest, () => answer(async () => runtimeInfo()));
  connection.onRequest(LoadModelRequest, (params) => answer(() => runner.load(params)));
  connection.onRequest(GenerateRequest, (params, token) => answer(() => runner.generate(params, token)));
  const exitCode = await new Promise<number>((resolve) => {
    connection.onClose(() => resolve(0));
    connection.onError(([error]) => {
      console.error(`pinpoint serve: the JSON-RPC stream failed: ${error.message}`);
      resolve(1);
    });
    connection.listen();
  });
  connection.dispose();
  await runner.dispose();
  return exitCode;
}

function runtimeInfo(): RuntimeInfo {
  return {
    runnerVersion: packageJson.version,
    onnxruntimeVersion: (require('onnxruntime-node/package.json') as { version: string }).version,
    cudaProviderInstalled: cudaProviderInstalled(),
    node: process.version,
  };
}

/** Holds the one loaded model and runs jobs on it one at a time. */
class Runner {
  private model: Model | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly connection: MessageConnection) {}

  load(params: LoadModelParams): Promise<ModelInfo> {
    checkLoadParams(params);
    return this.exclusive(async () => {
      // the old model goes first, so two models never hold (GPU) memory at once
      await this.unload();
      const model = Model.load(params.dir, { device: params.device, dtype: params.dtype });
      try {
        const { placement } = await model.graph({ dtype: model.dtype, ...GENERATION_GRAPH });
        this.model = model;
        const { config } = model;
        this.log(`loaded ${model.checkpoint.dir} (${config.modelType}, ${model.dtype}) on ${placement.provider}: ${JSON.stringify(placement.nodesByProvider)}`);
        return {
          dir: model.checkpoint.dir, modelType: config.modelType, layers: config.numLayers, heads: config.numHeads,
          kvHeads: config.numKvHeads, headDim: config.headDim, hiddenSize: config.hiddenSize, vocabSize: config.vocabSize,
          provider: placement.provider, nodesByProvider: placement.nodesByProvider, dtype: model.dtype,
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

  async dispose(): Promise<void> {
    await this.exclusive(() => this.unload());
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
    void this.connection.sendNotification(LogNotification, { level: 'info', message });
  }
}

function encodeConversation(model: Model, conversation: ChatMessage[], index: number): number[] {
  try {
    return model.tokenizer.encodeChat(conversation, { addGenerationPrompt: true });
  } catch (err) {
    // chat templates raise on conversations they do not accept (e.g. roles that do not alternate)
    throw new RangeError(`conversation ${index}: ${(err as Error).message}`);
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
  if (error instanceof CheckpointError || error instanceof RangeError) return new ResponseError(RunnerErrorCode.BadInput, error.message);
  if (error instanceof DeviceError) return new ResponseError(RunnerErrorCode.Device, error.message);
  // anything else is a runner bug: keep the stack in the runner's log, which the extension shows
  console.error(error.stack);
  return new ResponseError(RunnerErrorCode.Internal, error.message);
}

function throwIfCancelled(token: CancellationToken): void {
  if (token.isCancellationRequested) throw new ResponseError(RunnerErrorCode.Cancelled, 'the request was cancelled');
}

const DEVICES: readonly unknown[] = ['auto', 'cpu', 'cuda'];
const DTYPES: readonly unknown[] = ['float32', 'float16'];

/** Params come from another process as JSON, so their types are checked rather than trusted. */
function checkLoadParams(params: LoadModelParams): void {
  check(typeof params?.dir === 'string' && params.dir !== '', 'model/load: dir must be the path of a checkpoint folder');
  check(DEVICES.includes(params.device), `model/load: device must be auto, cpu or cuda (got ${JSON.stringify(params.device)})`);
  check(DTYPES.includes(params.dtype), `model/load: dtype must be float32 or float16 (got ${JSON.stringify(params.dtype)})`);
}

function checkGenerateParams(params: GenerateParams): void {
  check(Array.isArray(params?.messages) && params.messages.length > 0, 'model/generate: messages must list at least one conversation');
  params.messages.forEach((conversation, i) => {
    check(Array.isArray(conversation) && conversation.length > 0, `model/generate: conversation ${i} must list at least one message`);
    check(conversation.every(isChatMessage), `model/generate: every message of conversation ${i} needs a string role and content`);
  });
  const { maxNewTokens } = params;
  check(Number.isSafeInteger(maxNewTokens) && maxNewTokens > 0, `model/generate: maxNewTokens must be a positive integer (got ${JSON.stringify(maxNewTokens)})`);
}

function isChatMessage(message: unknown): message is ChatMessage {
  const m = message as Partial<ChatMessage> | null;
  return typeof m?.role === 'string' && typeof m.content === 'string';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new RangeError(message);
}
