import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Device, Provider } from '../../../src/protocol/protocol';

/**
 * ONNX Runtime sessions on the CUDA execution provider when it loads, else on CPU, and an account of where the
 * nodes actually ran: ORT can quietly place a graph on CPU when the CUDA provider library is missing, so the
 * provider is read back from ORT's own profile of a first run rather than assumed from the request.
 */

export interface PlacementReport {
  requested: Device;
  /** cuda when any node ran on the CUDA provider (ORT keeps only shape arithmetic on CPU then) */
  provider: Provider;
  /** kernel launches per ORT execution provider in the profiled run; none where nothing was profiled */
  nodesByProvider: Record<string, number>;
}

export class DeviceError extends Error {}

/** Whether a model asked to run on `device` may run on CUDA. */
export function mayUseCuda(device: Device): boolean {
  return device === 'cuda' || (device === 'auto' && cudaProviderInstalled());
}

const CUDA_LIBRARY = 'libonnxruntime_providers_cuda.so';

/** Whether onnxruntime-node has its CUDA provider library beside the binding (it is not in the npm package). */
export function cudaProviderInstalled(): boolean {
  const binding = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const dir = path.join(binding, 'bin', 'napi-v6', process.platform, process.arch);
  return fs.existsSync(path.join(dir, CUDA_LIBRARY));
}

function executionProviders(device: Device): ort.InferenceSession.ExecutionProviderConfig[] {
  const wantCuda = mayUseCuda(device);
  if (device === 'cuda' && !cudaProviderInstalled()) {
    throw new DeviceError(`device "cuda" was requested but ${CUDA_LIBRARY} is not installed beside onnxruntime-node`);
  }
  return wantCuda ? [{ name: 'cuda', deviceId: 0 }, 'cpu'] : ['cpu'];
}

/**
 * How a session is made, per graph:
 * - `prepack`: let ONNX Runtime's CPU kernels keep each weight of a Gemm in their packed layout (decoding a batch of
 *   a few rows runs 4x faster); the packed copy replaces the one mapped from the weight file, but only where each
 *   weight has one such consumer in the graph, so graphs that use a weight twice (a training step, a decoding loop
 *   beside the prompt pass, path patching's tail) run unpacked, on the one mapped copy;
 * - `measure`: when the placement is measured by profiling the first run: `always`, or only where it is in question
 *   (`cuda`: the CUDA provider is among the session's), for graphs whose first run is costly to profile (a training
 *   step). A session given the CPU provider alone runs every node there and reports no kernel counts.
 */
export interface SessionSettings {
  prepack: boolean;
  measure: 'always' | 'cuda';
}

/**
 * ONNX Runtime's session config entries (SessionOptions.extra). Constant sharing would merge initializers that hold
 * the same bytes, such as a tied embedding table and the inference graph's own copy of it for lm_head, which is
 * there so that the packed lm_head does not keep the whole table mapped for the embedding lookup's sake.
 * Initializers on a GPU take their size, not an arena's rounding.
 */
function sessionConfig(settings: SessionSettings): Record<string, Record<string, string>> {
  return {
    session: { disable_prepacking: settings.prepack ? '0' : '1', use_device_allocator_for_initializers: '1' },
    optimization: { disable_specified_optimizers: 'ConstantSharing' },
  };
}

export interface Session {
  session: ort.InferenceSession;
  placement: PlacementReport;
}

/**
 * Creates a session for the model file and runs `probe` once with profiling on to learn where nodes ran.
 * A request for "cuda" that ends up on CPU is an error, never a silent fallback.
 */
export async function createSession(
  modelPath: string,
  device: Device,
  probe: (s: ort.InferenceSession) => Promise<void>,
  settings: SessionSettings,
): Promise<Session> {
  const providers = executionProviders(device);
  const measured = settings.measure === 'always' || providers.length > 1;
  const profileDir = measured ? fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-profile-')) : '';
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
    ...(measured ? { enableProfiling: true, profileFilePrefix: path.join(profileDir, 'run') } : {}),
    logSeverityLevel: 3,
    // ORT's memory pattern lays out one block for a run's planned peak, which its arena then rounds up: a training
    // step of a 0.5B model peaked at 5.7 GB with it and at 3.9 GB without, no slower
    enableMemPattern: false,
    extra: sessionConfig(settings),
  });
  await probe(session);
  let nodesByProvider: Record<string, number> = {};
  if (measured) {
    session.endProfiling();
    nodesByProvider = readProfile(profileDir);
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
  const provider: Provider = (nodesByProvider.CUDAExecutionProvider ?? 0) > 0 ? 'cuda' : 'cpu';
  if (device === 'cuda' && provider !== 'cuda') {
    throw new DeviceError('device "cuda" was requested but ONNX Runtime ran the graph on CPU (the CUDA provider did not load)');
  }
  return { session, placement: { requested: device, provider, nodesByProvider } };
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string };
}

function readProfile(dir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const file of fs.readdirSync(dir)) {
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
    for (const e of events) {
      const provider = e.cat === 'Node' && e.name?.endsWith('_kernel_time') ? e.args?.provider : undefined;
      if (provider) counts[provider] = (counts[provider] ?? 0) + 1;
    }
  }
  return counts;
}
