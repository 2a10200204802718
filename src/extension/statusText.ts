import * as path from 'node:path';
import type { ModelInfo } from '../protocol/protocol';

/**
 * What the status bar entry says: the model the runner holds and the device ONNX Runtime measured it running on
 * (never the device asked for), or the configured model not loaded yet; and the job running. Kept apart from the
 * vscode API so that each case is tested without an editor, CUDA included.
 */
export function statusText(
  model: ModelInfo | undefined,
  configured: string,
  job: string | undefined,
  busy: boolean,
): { text: string; tooltip: string } {
  const icon = busy || job ? '$(sync~spin)' : '$(target)';
  const name = model
    ? `${path.basename(model.dir)} · ${model.provider.toUpperCase()}`
    : configured
      ? `${path.basename(configured)} (not loaded)`
      : 'no model';
  const about = model
    ? describeModel(model)
    : configured
      ? `${configured}\nLoaded by the first job. Click to choose another checkpoint folder.`
      : 'No model chosen. Click to choose a checkpoint folder.';
  return {
    text: `${icon} Pinpoint: ${name}${job ? ` · ${job}` : ''}`,
    tooltip: job ? `Running: ${job} (Pinpoint: Stop Job stops it)\n${about}` : about,
  };
}

function describeModel(model: ModelInfo): string {
  const nodes = Object.entries(model.nodesByProvider).map(([provider, count]) => `  ${provider}: ${count}`);
  return [
    model.dir,
    `${model.modelType}, ${model.layers} layers, ${model.heads} heads (${model.kvHeads} KV) of ${model.headDim}, ${model.dtype}`,
    `Runs on ${model.provider.toUpperCase()} (kernels per execution provider in a profiled run):`,
    ...nodes,
    'Click to choose another checkpoint folder.',
  ].join('\n');
}
