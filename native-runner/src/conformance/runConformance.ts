import { Model } from '../runtime/model';
import { checkForward, checkGreedy, checkPatching, checkTokenizer, TOLERANCE, type Check } from './conformance';
import { readReferenceCase } from './referenceCase';
import { checkAdamW, checkGradients } from './trainingConformance';
import type { Device, Dtype } from '../../../src/protocol/protocol';

export interface CaseResult {
  case: string;
  pass: boolean;
  checks: Record<string, Check>;
  /** where the graphs ran, as ONNX Runtime reports it */
  provider: string;
  dtype: Dtype;
}

export interface ConformanceOptions {
  device: Device;
  dtype: Dtype;
}

/**
 * Runs every check of one reference case. float16 is judged on logits alone (to 2e-2): the reference numbers
 * are float32, and z, patched logits and argmax ties are not expected to survive half precision.
 */
export async function runCase(dir: string, options: ConformanceOptions): Promise<CaseResult> {
  const c = readReferenceCase(dir);
  const model = Model.load(dir, options);
  try {
    const tolerance = TOLERANCE[options.dtype];
    const checks: Record<string, Check> = { ...checkTokenizer(model.tokenizer, c), ...(await checkForward(model, c, tolerance)) };
    if (options.dtype === 'float32') {
      Object.assign(checks, await checkPatching(model, c, tolerance), await checkGreedy(model, c), await checkGradients(model, c));
      checks.adamw_qkvo = await checkAdamW(model, c, true);
      checks.adamw_qo = await checkAdamW(model, c, false);
    }
    const { provider } = await model.placement();
    return { case: c.name, pass: Object.values(checks).every((x) => x.pass), checks, provider, dtype: options.dtype };
  } finally {
    await model.dispose();
  }
}
