import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

/**
 * ONNX Runtime sessions on the CUDA execution provider when it loads, else on CPU, and an account of where the
 * nodes actually ran: ORT can quietly place a graph on CPU when the CUDA provider library is missing, so the
 * provider is read back from ORT's own profile of a first run rather than assumed from the request.
 */

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Provider = 'cuda' | 'cpu';

export interface PlacementReport {
  requested: DeviceRequest;
  /** cuda when any node ran on the CUDA provider (ORT keeps only shape arithmetic on CPU then) */
  provider: Provider;
  /** kernel launches per ORT execution provider in the profiled run */
  nodesByProvider: Record<string, number>;
}

export class DeviceError extends Error {}

const CUDA_LIBRARY = 'libonnxruntime_providers_cuda.so';

/** Whether onnxruntime-node has its CUDA provider library beside the binding (it is not in the npm package). */
export function cudaProviderInstalled(): boolean {
  const binding = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const dir = path.join(binding, 'bin', 'napi-v6', process.platform, process.arch);
  return fs.existsSync(path.join(dir, CUDA_LIBRARY));
}

function executionProviders(device: DeviceRequest): ort.InferenceSession.ExecutionProviderConfig[] {
  const wantCuda = device === 'cuda' || (device === 'auto' && cudaProviderInstalled());
  if (device === 'cuda' && !cudaProviderInstalled()) {
    throw new DeviceError(`device "cuda" was requested but ${CUDA_LIBRARY} is not installed beside onnxruntime-node`);
  }
  return wantCuda ? [{ name: 'cuda', deviceId: 0 }, 'cpu'] : ['cpu'];
}

/**
 * ONNX Runtime's session config entries (SessionOptions.extra). Prepacking would give every Gemm of every subgraph
 * (the inference graph has a plain and an instrumented branch, each with a decoding loop) a packed copy of its
 * weight of its own: 240 MB more for a 30M model of 106 MB; without it every node reads the one copy mapped from the weight
 * file, and a session opens in a fraction of the time. Initializers on a GPU take their size, not an arena's.
 */
const SESSION_CONFIG = { disable_prepacking: '1', use_device_allocator_for_initializers: '1' };

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
  device: DeviceRequest,
  probe: (s: ort.InferenceSession) => Promise<void>,
): Promise<Session> {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-profile-'));
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: executionProviders(device),
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: path.join(profileDir, 'run'),
    logSeverityLevel: 3,
    // ORT's memory pattern lays out one block for a run's planned peak, which its arena then rounds up: a training
    // step of a 0.5B model peaked at 5.7 GB with it and at 3.9 GB without, no slower
    enableMemPattern: false,
    extra: { session: SESSION_CONFIG },
  });
  await probe(session);
  session.endProfiling();
  const nodesByProvider = readProfile(profileDir);
  fs.rmSync(profileDir, { recursive: true, force: true });
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
