"""Random BF16 weights for a benchmark checkpoint of a large shape, drawn by torch (on the GPU when there is one).

Node's seeded sampler writes the small shapes; at 8B parameters it would take a quarter of an hour, which the GPU
machine's minutes cannot spare. Same distribution as native-runner/src/checkpoint/randomCheckpoint.ts: linear weights
~ N(0, std^2), norm weights 1 + 0.1 N(0, 1). Usage:

    python3 random_weights.py <layout.json> <model.safetensors>

layout.json: {"seed": int, "std": float, "tensors": [{"name", "shape", "isNorm"}]} (bench/benchModels.ts writes it).
"""

import json
import struct
import sys

import torch


def main():
    layout_file, out = sys.argv[1:3]
    with open(layout_file) as f:
        layout = json.load(f)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    generator = torch.Generator(device=device).manual_seed(layout['seed'])
    header, offset = {}, 0
    for t in layout['tensors']:
        size = 2 * int(torch.tensor(t['shape']).prod().item()) if t['shape'] else 2
        header[t['name']] = {'dtype': 'BF16', 'shape': t['shape'], 'data_offsets': [offset, offset + size]}
        offset += size
    header['__metadata__'] = {'format': 'pt'}
    encoded = json.dumps(header, separators=(',', ':')).encode()
    encoded += b' ' * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with open(out, 'wb') as f:
        f.write(struct.pack('<Q', len(encoded)))
        f.write(encoded)
        for t in layout['tensors']:
            x = torch.randn(t['shape'], generator=generator, device=device)
            x = 1 + 0.1 * x if t['isNorm'] else layout['std'] * x
            f.write(x.to(torch.bfloat16).view(torch.int16).cpu().numpy().tobytes())


if __name__ == '__main__':
    main()
