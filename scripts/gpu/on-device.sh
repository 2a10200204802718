#!/bin/bash
# On the GPU machine, sourced in the call that carries the last piece: joins the pieces kept in /tmp/gpu, unpacks
# node, onnxruntime-node and its CUDA provider once, and puts them on PATH, NODE_PATH and LD_LIBRARY_PATH.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
G=/tmp/gpu
bash "$here/stash.sh" >/dev/null
if [ ! -x "$G/bin/node" ]; then
  for i in $(seq 1 "$(cat "$here/pieces")"); do
    [ -f "$G/piece.$i" ] || { echo "piece $i is not on this machine: run 'bash .gpu/$i/stash.sh' carrying .gpu/$i first" >&2; return 1; }
  done
  for i in $(seq 1 "$(cat "$here/pieces")"); do cat "$G/piece.$i"; done > "$G/bundle.tar"
  [ "$(sha256sum "$G/bundle.tar" | cut -d' ' -f1)" = "$(cat "$here/bundle.sha256")" ] || { echo "the pieces do not join into the packed bundle" >&2; return 1; }
  tar xf "$G/bundle.tar" -C "$G" && rm "$G/bundle.tar" "$G"/piece.*
  chmod +x "$G/zstd"
  mkdir -p "$G/bin" && "$G/zstd" -d -q -f "$G/node.zst" -o "$G/bin/node" && chmod +x "$G/bin/node"
  "$G/zstd" -d -q -c "$G/ort.tar.zst" | tar x -C "$G"
  "$G/zstd" -d -q -f "$G/cuda.so.zst" -o "$G/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so"
fi
export PATH="$G/bin:$PATH"
export NODE_PATH="$G/node_modules${NODE_PATH:+:$NODE_PATH}"
# the provider needs CUDA 13's runtime, cuBLAS and cuDNN 9, which the machine has here
export LD_LIBRARY_PATH="/usr/local/cuda/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "node $(node --version); onnxruntime-node $(node -p "require('onnxruntime-node/package.json').version") with its CUDA provider"
