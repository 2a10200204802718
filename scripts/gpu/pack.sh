#!/bin/bash
# Packs what the GPU machine needs to run Pinpoint's GPU check (scripts/gpu/check.sh), from the project root:
#   bash scripts/gpu/pack.sh
# The GPU machine has CUDA, PyTorch and transformers but no Node.js and no network, and each call to it carries at
# most 64 MiB of the working tree. So node, onnxruntime-node 1.29.0 (linux-x64) and ORT 1.29.0's CUDA execution
# provider (built for CUDA 13, from the npm package below) travel compressed, cut into pieces of PIECE_MB under the
# git-ignored .gpu/, one piece per call; the runner and the benchmarks travel as bundles in dist/.
# Then, one call each: `bash .gpu/<i>/stash.sh` carrying .gpu/<i> for every piece but the last, and
# `bash .gpu/<N>/run.sh` carrying .gpu/<N> and dist (README.md, "The GPU check").
set -euo pipefail
ORT_VERSION=1.29.0
CUDA_PACKAGE=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
CACHE=${PINPOINT_GPU_CACHE:-/tmp/pinpoint-gpu-cache}
PIECE_BYTES=$(( ${PIECE_MB:-32} * 1024 * 1024 ))
root=$(git rev-parse --show-toplevel)
cd "$root"
command -v zstd >/dev/null || apt-get install -y -qq zstd >/dev/null
mkdir -p "$CACHE"

# the CUDA provider and the shared-provider bridge it loads, from the package's Linux x64 plugins
if [ ! -f "$CACHE/cuda.so.zst" ]; then
  (cd "$CACHE" && rm -rf package && npm pack --silent "$CUDA_PACKAGE" >/dev/null && tar xzf ./*.tgz)
  plugins="$CACHE/package/Plugins/Linux/x64"
  cp "$plugins/libonnxruntime_providers_shared.so" "$CACHE/"
  zstd -19 -T0 -q -f "$plugins/libonnxruntime_providers_cuda.so" -o "$CACHE/cuda.so.zst"
fi
# onnxruntime-node with its linux-x64 binding only, the bridge beside it
if [ ! -f "$CACHE/ort.tar.zst" ]; then
  rm -rf "$CACHE/ort" && mkdir -p "$CACHE/ort"
  (cd "$CACHE/ort" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund --onnxruntime-node-install=skip "onnxruntime-node@$ORT_VERSION" >/dev/null)
  bin="$CACHE/ort/node_modules/onnxruntime-node/bin/napi-v6"
  find "$bin" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$bin/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +
  cp "$CACHE/libonnxruntime_providers_shared.so" "$bin/linux/x64/"
  tar cf - -C "$CACHE/ort" node_modules | zstd -19 -T0 -q -o "$CACHE/ort.tar.zst"
fi
[ -f "$CACHE/node.zst" ] || zstd -19 -T0 -q -c "$(command -v node)" > "$CACHE/node.zst"

# the runner and the two benchmarks as bundles beside it in dist/, and the PyTorch peer they start
node scripts/build.mjs --production
for bench in vsTorch workflow; do
  npx esbuild "bench/$bench.ts" --bundle --platform=node --target=node20 --format=cjs --minify \
    --external:onnxruntime-node --log-level=warning --outfile="dist/$bench.js"
done
rm -rf dist/peer && cp -r bench/peer dist/peer

# the pieces: one stream of node, onnxruntime-node, the provider and zstd itself (the device has none)
rm -rf .gpu && mkdir -p .gpu
bundle="$CACHE/bundle.tar"
cp "$(command -v zstd)" "$CACHE/zstd"
tar cf "$bundle" -C "$CACHE" node.zst ort.tar.zst cuda.so.zst zstd
pieces=$(( ($(stat -c %s "$bundle") + PIECE_BYTES - 1) / PIECE_BYTES ))
for i in $(seq 1 "$pieces"); do
  mkdir -p ".gpu/$i"
  dd if="$bundle" of=".gpu/$i/piece" bs=4M iflag=skip_bytes,count_bytes skip=$(( (i - 1) * PIECE_BYTES )) count="$PIECE_BYTES" status=none
  cp scripts/gpu/stash.sh ".gpu/$i/"
  echo "$i" > ".gpu/$i/index"
done
last=".gpu/$pieces"
echo "$pieces" > "$last/pieces"
sha256sum "$bundle" | cut -d' ' -f1 > "$last/bundle.sha256"
cp scripts/gpu/on-device.sh scripts/gpu/check.sh "$last/"
printf '#!/bin/bash\n# The GPU check, in the call that carries the last piece and dist: bash run.sh [conformance] [bench] [workflow]\nhere=$(cd "$(dirname "$0")" && pwd)\nsource "$here/on-device.sh" && bash "$here/check.sh" "$@"\n' > "$last/run.sh"
du -sh .gpu/* dist
echo "ready: $pieces pieces; carry .gpu/1 .. .gpu/$((pieces - 1)) with 'bash .gpu/<i>/stash.sh', then .gpu/$pieces and dist with 'bash .gpu/$pieces/run.sh'"
