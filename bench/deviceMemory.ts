import { spawnSync } from 'node:child_process';

/**
 * Peak device memory of a process on CUDA, sampled from nvidia-smi (its CUDA context included, as for every process
 * measured): ONNX Runtime's and PyTorch's allocators both keep what they reserved, so the samples' maximum is close
 * to the true peak.
 */
export class DeviceMemorySampler {
  peakBytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** What the process holds now; it also counts towards the peak. */
  sample(): number {
    const out = spawnSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).stdout ?? '';
    const row = out
      .split('\n')
      .map((line) => line.split(',').map((x) => x.trim()))
      .find(([pid]) => Number(pid) === this.pid);
    const bytes = row ? Number(row[1]) * 2 ** 20 : 0;
    this.peakBytes = Math.max(this.peakBytes, bytes);
    return bytes;
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peakBytes;
  }
}
