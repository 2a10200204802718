import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadCheckpoint, type Checkpoint } from '../checkpoint/checkpoint';
import type { ModelConfig } from '../checkpoint/config';
import { ModelTokenizer } from '../checkpoint/tokenizer';
import type { Graph } from '../onnx/graph';
import { fileWeights, prepareWeightFile, writeFileAtomic, type WeightFile } from '../model/weightFile';
import { weightsSha256 } from '../model/weightsSha256';
import { buildInferenceGraph, type Decoding } from './inferenceGraph';
import { forwardOn } from './forward';
import { createSession, DeviceError, mayUseCuda, type PlacementReport, type SessionSettings } from './session';
import type { Device, Dtype } from '../../../src/protocol/protocol';

export interface LoadOptions {
  device?: Device;
  /** float32 (default), or float16 for CUDA: it also runs on CPU, slowly, which lets CI test the float16 graphs */
  dtype?: Dtype;
}

export interface CompiledGraph {
  session: ort.InferenceSession;
  placement: PlacementReport;
}

/**
 * A checkpoint ready to run: its tokenizer, its weights in the graph dtype, and at most one open ONNX Runtime
 * session. Every session holds the weights it uses (on the device, or mapped from the weight file), so the model
 * keeps one resident graph at a time: the inference graph serves every inference job, and a graph that needs
 * something else (a training step, attribution's backward pass) takes its place for as long as it is used.
 * Callers use one model from one job at a time.
 */
export class Model {
  private resident: { key: string; compiled: Promise<CompiledGraph> } | undefined;

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly tokenizer: ModelTokenizer,
    readonly weights: WeightFile,
    readonly device: Device,
    /** the content identity of the checkpoint's weights (model/weightsSha256.ts) */
    readonly weightsSha256: string,
  ) {}

  static load(dir: string, options: LoadOptions = {}): Model {
    const dtype = options.dtype ?? 'float32';
    const device = options.device ?? 'auto';
    if (dtype === 'bfloat16' && !mayUseCuda(device)) {
      throw new DeviceError(
        `bfloat16 graphs run on CUDA only: ONNX Runtime's CPU provider has no bfloat16 kernels for them (device "${device}"${device === 'auto' ? ', and the CUDA provider is not installed' : ''}); use float32 or float16`,
      );
    }
    const checkpoint = loadCheckpoint(dir);
    const tokenizer = ModelTokenizer.load(dir);
    const sha256 = weightsSha256(checkpoint.weights);
    return new Model(checkpoint, tokenizer, prepareWeightFile(checkpoint, dtype, sha256), device, sha256);
  }

  get config(): ModelConfig {
    return this.checkpoint.config;
  }

  get dtype(): Dtype {
    return this.weights.dtype;
  }

  /** The token used to pad batches: the tokenizer's pad, else EOS, else 0 (padded positions are masked anyway). */
  get padId(): number {
    return this.tokenizer.padTokenId ?? this.config.padTokenId ?? this.tokenizer.eosTokenId ?? this.config.eosTokenIds[0] ?? 0;
  }

  /** How the inference graph decodes: in a Loop where a GPU may run it, step by step on CPU (inferenceGraph.ts). */
  get decoding(): Decoding {
    return mayUseCuda(this.device) ? 'loop' : 'steps';
  }

  /** The inference graph (runtime/inferenceGraph.ts), compiled once and opened when it is not the resident graph. */
  inference(): Promise<CompiledGraph> {
    return this.session(
      'inference',
      () => buildInferenceGraph(this.config, fileWeights(this.weights), this.dtype, this.padId, this.decoding),
      async (s) => {
        await forwardOn(s, this, { prompts: [[this.padId]] });
      },
      { prepack: this.decoding === 'steps', measure: 'always' },
    );
  }

  /**
   * past_key.{l} / past_value.{l} with no cached positions, [B, KV, 0, D], for a prompt pass that decodes by steps
   * (on CPU, so never in bfloat16, which onnxruntime-node cannot feed).
   */
  emptyCache(rows: number): Record<string, ort.Tensor> {
    const { numLayers, numKvHeads, headDim } = this.config;
    if (this.dtype === 'bfloat16') throw new DeviceError('bfloat16 graphs decode on CUDA only');
    const dtype = this.dtype;
    const empty = () => new ort.Tensor(dtype, dtype === 'float32' ? new Float32Array(0) : new Uint16Array(0), [rows, numKvHeads, 0, headDim]);
    return Object.fromEntries(
      Array.from({ length: numLayers }, (_, l) => [
        [`past_key.${l}`, empty()],
        [`past_value.${l}`, empty()],
      ]).flat(),
    );
  }

  /** Where the inference graph runs, as ONNX Runtime reported it. */
  async placement(): Promise<PlacementReport> {
    return (await this.inference()).placement;
  }

  /** Where the resident graph runs, whichever it is (the inference graph's placement when none is open). */
  async residentPlacement(): Promise<PlacementReport> {
    return this.resident ? (await this.resident.compiled).placement : this.placement();
  }

  /**
   * Opens the graph `key` as the model's resident session, releasing the one before it first so that two never
   * hold the weights at once. `probe` runs it once, with profiling on, so that the placement report says where its
   * nodes actually ran; it may call back into this model only through the session it is given.
   */
  session(key: string, build: () => Graph, probe: (s: ort.InferenceSession) => Promise<void>, settings: SessionSettings): Promise<CompiledGraph> {
    if (this.resident?.key === key) return this.resident.compiled;
    const previous = this.resident?.compiled;
    const compiled = (async () => {
      await release(previous);
      return this.compile(build(), probe, settings);
    })();
    this.resident = { key, compiled };
    compiled.catch(() => {
      if (this.resident?.compiled === compiled) this.resident = undefined;
    });
    return compiled;
  }

  private async compile(graph: Graph, probe: (s: ort.InferenceSession) => Promise<void>, settings: SessionSettings): Promise<CompiledGraph> {
    const bytes = graph.serialize();
    const hash = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const file = path.join(this.weights.dir, `graph-${hash}.onnx`);
    if (!fs.existsSync(file)) writeFileAtomic(file, bytes);
    return createSession(file, this.device, probe, settings);
  }

  async dispose(): Promise<void> {
    const previous = this.resident?.compiled;
    this.resident = undefined;
    await release(previous);
  }
}

async function release(compiled: Promise<CompiledGraph> | undefined): Promise<void> {
  const settled = await compiled?.then(
    (c) => c,
    () => undefined,
  );
  await settled?.session.release();
}
