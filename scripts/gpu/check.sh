#!/bin/bash
# The GPU check of issue 11, on the GPU machine, from the project root, after on-device.sh (run.sh does both):
# conformance on CUDA in float32, float16 and bfloat16; the benchmark against PyTorch + transformers at the 0.5B
# shape; the editor's serve workflow on an 8B-shaped model in float16 with its device memory. Every figure is
# printed, and the whole log is kept in $OUT/gpu-check.log when the run tool gives an $OUT.
# Goals: forward >= 1.2x transformers; a head-tuning step no slower and no larger than PyTorch's; 8B within 24 GB.
# Usage: bash check.sh [conformance] [bench] [workflow]   (all three by default: about 8 minutes, each part bounded)
set -u
PARTS=${*:-conformance bench workflow}
LOG=${OUT:-/tmp}/gpu-check.log
export PINPOINT_TORCH_PYTHON=$(command -v python3)
export PINPOINT_CACHE=/tmp/pinpoint-cache PINPOINT_BENCH_MODELS=/tmp/pinpoint-bench-models
: > "$LOG"

# name, command: each command bounded by `timeout`, so that one that hangs leaves time for the others
step() {
  local name=$1; shift
  local start=$SECONDS
  echo "== $name" | tee -a "$LOG"
  "$@" 2>&1 | tee -a "$LOG" | tail -n 40
  echo "== $name: exit ${PIPESTATUS[0]} after $(( SECONDS - start )) s" | tee -a "$LOG"
}

# one line per conformance case: its verdict, provider, largest error, and each failing check
conformance() {
  timeout 90 node dist/runner.js conformance --device cuda --dtype "$1" test/fixtures/reference/*/ | node -e '
    for (const line of require("fs").readFileSync(0, "utf8").trim().split("\n")) {
      const r = JSON.parse(line);
      const checks = Object.entries(r.checks);
      const worst = Math.max(...checks.map(([, c]) => c.max_abs_err ?? 0));
      const failing = checks.filter(([, c]) => !c.pass).map(([k, c]) => `${k} ${c.max_abs_err ?? "mismatch"}`);
      console.log(`${r.case} ${r.dtype} on ${r.provider}: ${r.pass ? "pass" : "FAIL"}, largest error ${worst.toExponential(2)}${failing.length ? `; failing: ${failing.join(", ")}` : ""}`);
    }'
  return "${PIPESTATUS[0]}"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "CUDA", torch.version.cuda, "transformers", transformers.__version__)' | tee -a "$LOG"
case " $PARTS " in *" conformance "*)
  for dtype in float32 float16 bfloat16; do step "conformance on CUDA, $dtype" conformance "$dtype"; done ;;
esac
case " $PARTS " in *" bench "*)
  step "Pinpoint against PyTorch + transformers on CUDA, 0.5B shape" \
    timeout 240 node dist/vsTorch.js --device cuda --shape 0.5b --quick --only forward,heads,patching,generate ;;
esac
case " $PARTS " in *" workflow "*)
  step "the serve workflow on an 8B shape, float16 on CUDA" \
    timeout 360 node dist/workflow.js --shape 8b --device cuda --dtype float16 --repeat 1 ;;
esac
