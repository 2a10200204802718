import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadCheckpoint, type Checkpoint } from '../checkpoint/checkpoint';
import type { ModelConfig } from '../checkpoint/config';
import { ModelTokenizer } from '../checkpoint/tokenizer';
import type { Graph } from '../onnx/graph';
import { buildDecoderGraph, type DecoderGraphOptions } from '../model/decoder';
import { fileWeights, prepareWeightFile, writeFileAtomic, type GraphDtype, type WeightFile } from '../model/weightFile';
import { leftPadded, tokenFeeds } from './batch';
import { interventionFeeds } from './interventions';
import { createSession, type DeviceRequest, type PlacementReport } from './session';

export interface LoadOptions {
  device?: DeviceRequest;
  /** float32 (default), or float16 for CUDA: it also runs on CPU, slowly, which lets CI test the float16 graphs */
  dtype?: GraphDtype;
}

export interface CompiledGraph {
  session: ort.InferenceSession;
  placement: PlacementReport;
}

/** A checkpoint ready to run: its tokenizer, its weights in the graph dtype, and the graphs compiled so far. */
export class Model {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly tokenizer: ModelTokenizer,
    readonly weights: WeightFile,
    readonly device: DeviceRequest,
  ) {}

  static load(dir: string, options: LoadOptions = {}): Model {
    const dtype = options.dtype ?? 'float32';
    const device = options.device ?? 'auto';
    const checkpoint = loadCheckpoint(dir);
    const tokenizer = ModelTokenizer.load(dir);
    return new Model(checkpoint, tokenizer, prepareWeightFile(checkpoint, dtype), device);
  }

  get config(): ModelConfig {
    return this.checkpoint.config;
  }

  get dtype(): GraphDtype {
    return this.weights.dtype;
  }

  /** The token used to pad batches: the tokenizer's pad, else EOS, else 0 (padded positions are masked anyway). */
  get padId(): number {
    return this.tokenizer.padTokenId ?? this.config.padTokenId ?? this.tokenizer.eosTokenId ?? this.config.eosTokenIds[0] ?? 0;
  }

  /** Compiles (once per distinct options) and opens the decoder graph. */
  async graph(options: DecoderGraphOptions): Promise<CompiledGraph & { options: DecoderGraphOptions }> {
    const compiled = await this.session(`decoder ${JSON.stringify(options)}`,
      () => buildDecoderGraph(this.config, fileWeights(this.weights), options).graph,
      (s) => this.probe(s, options));
    return { ...compiled, options };
  }

  /**
   * Opens a graph built over this model's weights, once per key. `probe` runs it once, with profiling on, so
   * that the placement report says where its nodes actually ran.
   */
  session(key: string, build: () => Graph, probe: (s: ort.InferenceSession) => Promise<void>): Promise<CompiledGraph> {
    let compiled = this.graphs.get(key);
    if (!compiled) {
      compiled = this.compile(build(), probe);
      this.graphs.set(key, compiled);
      compiled.catch(() => this.graphs.delete(key));
    }
    return compiled;
  }

  private async compile(graph: Graph, probe: (s: ort.InferenceSession) => Promise<void>): Promise<CompiledGraph> {
    const bytes = graph.serialize();
    const hash = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const file = path.join(this.weights.dir, `graph-${hash}.onnx`);
    if (!fs.existsSync(file)) writeFileAtomic(file, bytes);
    return createSession(file, this.device, probe);
  }

  /** One tiny run, to measure where ORT placed the nodes. */
  private async probe(session: ort.InferenceSession, options: DecoderGraphOptions): Promise<void> {
    const batch = leftPadded([[this.padId]], this.padId);
    const feeds: Record<string, ort.Tensor> = { ...tokenFeeds(batch), ...this.emptyCache(1) };
    if (options.interventions) Object.assign(feeds, interventionFeeds(this.config, [{}], 1, this.dtype));
    if (!options.kvCache) for (const name of Object.keys(feeds)) if (name.startsWith('past_')) delete feeds[name];
    await session.run(feeds);
  }

  /** past_key.{l} / past_value.{l} with no cached positions: [B, KV, 0, D]. */
  emptyCache(rows: number): Record<string, ort.Tensor> {
    const { numLayers, numKvHeads, headDim } = this.config;
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < numLayers; l++) {
      for (const kind of ['past_key', 'past_value']) {
        const empty = this.dtype === 'float32' ? new Float32Array(0) : new Uint16Array(0);
        feeds[`${kind}.${l}`] = new ort.Tensor(this.dtype, empty, [rows, numKvHeads, 0, headDim]);
      }
    }
    return feeds;
  }

  async dispose(): Promise<void> {
    const graphs = await Promise.allSettled(this.graphs.values());
    for (const g of graphs) if (g.status === 'fulfilled') await g.value.session.release();
    this.graphs.clear();
  }
}
