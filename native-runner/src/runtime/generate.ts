import type { RowIntervention } from '../interventions/interventions';
import { forward } from './forward';
import type { Model } from './model';

export interface GreedyOptions {
  maxNewTokens: number;
  /** stop a row at the model's EOS tokens (default true); a stopped row is fed padding, as transformers does */
  stopAtEos?: boolean;
  /** what every row does to the model at every position it decodes (e.g. knocking heads out) */
  intervention?: RowIntervention;
}

/**
 * Greedy decoding, batched over prompts of different lengths (left-padded), in one run of the inference graph: the
 * prompt pass and every decoding step happen inside ONNX Runtime (model/decodeLoop.ts), and only the tokens come back.
 */
export async function greedyGenerate(model: Model, prompts: number[][], options: GreedyOptions): Promise<number[][]> {
  const stopIds = options.stopAtEos === false ? [] : eosIds(model);
  const { generated } = await forward(model, {
    prompts,
    generate: { maxNewTokens: options.maxNewTokens, stopIds },
    interventions: options.intervention ? prompts.map(() => options.intervention!) : undefined,
  });
  return generated!;
}

function eosIds(model: Model): number[] {
  const fromTokenizer = model.tokenizer.eosTokenId;
  return [...new Set([...model.config.eosTokenIds, ...(fromTokenizer === null ? [] : [fromTokenizer])])];
}
