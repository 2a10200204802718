import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';

/**
 * The JSON-RPC protocol between the extension and the runner process (`pinpoint serve`). This file is shared by both
 * sides and the webviews, so it may import nothing but vscode-jsonrpc: importing the runner from here would pull
 * onnxruntime-node into the extension host.
 */

/** Where a model is asked to run: `auto` is CUDA when ONNX Runtime's CUDA provider is installed, else CPU. */
export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export type Device = (typeof DEVICES)[number];

/** Where ONNX Runtime ran a graph, as measured. */
export const PROVIDERS = ['cuda', 'cpu'] as const;
export type Provider = (typeof PROVIDERS)[number];

/**
 * The precision of a model's graphs: float32 everywhere; float16 and bfloat16 (for CUDA) keep the residual stream,
 * norms and softmax in float32. bfloat16 graphs run on CUDA only: ONNX Runtime's CPU provider has no kernels for them.
 */
export const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type Dtype = (typeof DTYPES)[number];

/** Codes of the `ResponseError`s the runner answers failed requests with; the message says what went wrong. */
export enum RunnerErrorCode {
  /** the request or the checkpoint it names cannot be used (the message names the file or field) */
  BadInput = 1,
  /** the requested device cannot run the model */
  Device = 2,
  /** a bug or an unexpected failure in the runner */
  Internal = 3,
  /** the client cancelled the request */
  Cancelled = 4,
}

export interface RuntimeInfo {
  runnerVersion: string;
  onnxruntimeVersion: string;
  /** whether onnxruntime-node has its CUDA provider library; without it every model runs on CPU */
  cudaProviderInstalled: boolean;
  /** the Node.js version running the runner (`process.version`) */
  node: string;
  /** the runner's process id, shown so that a stuck runner can be found (and killed) */
  pid: number;
}

export const RuntimeInfoRequest = new RequestType0<RuntimeInfo, void>('runtime/info');

/**
 * `pinpoint serve --root <folder> --root <folder> ...`: the folders (or files) the runner may read and write under.
 * Every path a request names (checkpoints, data files, output folders, tuning runs, export targets) must reach, with
 * symbolic links and `..` followed, a place under one of them, or the request is refused naming the path and the
 * roots. The extension passes the workspace's folders, its storage and the files and folders the user chose; a
 * runner started without any is unrestricted, as on the command line.
 */
export const ROOT_OPTION = '--root';

export interface AddRootsParams {
  roots: string[];
}

/** Roots the user chose after the runner started (a model folder picked, an export target); they stay for its life. */
export const AddRootsRequest = new RequestType<AddRootsParams, void, void>('runner/addRoots');

/**
 * The environment the runner process starts with. glibc serves allocations under its mmap threshold from its heap,
 * and raises that threshold each time it frees a large mapped block, so the packed weights of a second session (tens
 * of MB each) land on the heap and stay resident once the session is released: 1.5 GB of a 0.5B model's 2 GB,
 * measured. A fixed threshold keeps every large block mapped, and returned when freed. glibc reads it at start-up
 * only, so whoever starts the runner sets it (the extension, `pinpoint`'s shebang, the benchmarks).
 */
export const RUNNER_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

export interface LoadModelParams {
  /** a Hugging Face checkpoint folder (config.json, safetensors, tokenizer) */
  dir: string;
  device: Device;
  /** float16 is meant for CUDA; on CPU it runs, slowly */
  dtype: Dtype;
}

export interface ModelInfo {
  /** the checkpoint folder as the runner resolved it (absolute) */
  dir: string;
  modelType: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  hiddenSize: number;
  vocabSize: number;
  /** where ONNX Runtime actually ran the graph, measured rather than assumed from `device` */
  provider: Provider;
  /** kernel launches per ONNX Runtime execution provider in a profiled first run */
  nodesByProvider: Record<string, number>;
  dtype: Dtype;
}

/** The runner holds one model at a time: loading another disposes the old one first, even if the new one fails. */
export const LoadModelRequest = new RequestType<LoadModelParams, ModelInfo, void>('model/load');

export interface ChatMessage {
  /** as the checkpoint's chat template knows them, usually system, user and assistant */
  role: string;
  content: string;
}

export interface GenerateParams {
  /** one conversation per row of the batch, each rendered with the chat template and a generation prompt */
  messages: ChatMessage[][];
  maxNewTokens: number;
}

export interface GenerateResult {
  /** the generated text of each conversation, special tokens skipped */
  texts: string[];
  /** the generated token ids of each conversation, up to and including an EOS token */
  ids: number[][];
}

/**
 * Batched greedy decoding with the loaded model. Cancellation is honoured before the batch starts and when it ends
 * (the result is then dropped); long jobs get progress and cancellation between steps in the job protocol.
 */
export const GenerateRequest = new RequestType<GenerateParams, GenerateResult, void>('model/generate');

export interface LogParams {
  level: 'info' | 'warn' | 'error';
  message: string;
}

/** Runner → extension: something worth showing in the runner's output channel. */
export const LogNotification = new NotificationType<LogParams>('runner/log');
