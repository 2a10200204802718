"""The PyTorch peer of Pinpoint's benchmarks: a llama-family decoder in plain PyTorch, as an ML engineer would write
it (nanoGPT's manner, transformers' eager arithmetic), and the work the benchmarks time on both sides.

It is a baseline, not part of the product. `bench/vsTorch.ts` runs it in a process of its own per task, with the
same checkpoint and the same token ids as Pinpoint's side, and compares what both computed. Usage:

    python3 torch_peer.py <task> <spec.json> <out-dir>

Tasks: forward, generate, patching, heads, full (see `TASKS`). The spec gives the model folder, the task's inputs,
the device and dtype, and the peer: `decoder` (the decoder below, float32 on the CPU) or `transformers` (the
checkpoint through transformers' AutoModelForCausalLM, on CUDA where the GPU machine has it installed). The result is
printed as one JSON line; large arrays are written to <out-dir> as float32 files.
"""

import json
import math
import os
import resource
import struct
import sys
import time

import torch

torch.set_num_threads(os.cpu_count() or 1)
torch.set_grad_enabled(False)

# ---- checkpoint ----

DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}
TORCH_DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


def load_safetensors(path):
    """Every tensor of a safetensors file as float32, read one tensor at a time."""
    tensors = {}
    with open(path, 'rb') as f:
        (size,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(size))
        for name, entry in header.items():
            if name == '__metadata__':
                continue
            start, end = entry['data_offsets']
            f.seek(8 + size + start)
            raw = torch.frombuffer(bytearray(f.read(end - start)), dtype=DTYPES[entry['dtype']])
            tensors[name] = raw.reshape(entry['shape']).to(torch.float32)
    return tensors


class Config:
    def __init__(self, folder):
        with open(os.path.join(folder, 'config.json')) as f:
            c = json.load(f)
        self.hidden = c['hidden_size']
        self.layers = c['num_hidden_layers']
        self.heads = c['num_attention_heads']
        self.kv_heads = c.get('num_key_value_heads', self.heads)
        self.head_dim = c.get('head_dim', self.hidden // self.heads)
        self.eps = c['rms_norm_eps']
        self.theta = c.get('rope_theta', 10000.0)
        self.rope_scaling = c.get('rope_scaling')


def inverse_frequencies(cfg):
    """RoPE's inverse frequencies in float32, as transformers computes them (default and llama3)."""
    exponents = torch.arange(0, cfg.head_dim, 2, dtype=torch.int64).float() / cfg.head_dim
    inv = 1.0 / (cfg.theta ** exponents)
    scaling = cfg.rope_scaling
    if not scaling or scaling.get('rope_type', scaling.get('type')) == 'default':
        return inv
    if scaling.get('rope_type') != 'llama3':
        raise ValueError(f'the peer knows RoPE default and llama3, not {scaling}')
    factor, low, high = scaling['factor'], scaling['low_freq_factor'], scaling['high_freq_factor']
    old = scaling['original_max_position_embeddings']
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) * ~(wavelen > old / low)
    return torch.where(medium, smoothed, scaled)


# ---- the decoder ----

class Decoder(torch.nn.Module):
    """A llama / qwen2 decoder over the checkpoint's tensors, named as in the checkpoint.

    `hooks` may hold `z(layer, z)` (z: [B, T, H, D], each head's attention output) and `attn_in(layer, x)` (x: [B, T, C],
    the attention block's input after its norm): each returns the value to continue with, as TransformerLens hooks do.
    """

    def __init__(self, folder):
        super().__init__()
        self.cfg = Config(folder)
        self.w = torch.nn.ParameterDict({
            name.replace('.', '/'): torch.nn.Parameter(t, requires_grad=False)
            for name, t in load_safetensors(os.path.join(folder, 'model.safetensors')).items()
        })
        self.inv_freq = inverse_frequencies(self.cfg)

    def p(self, name):
        return self.w[name.replace('.', '/')]

    def has(self, name):
        return name.replace('.', '/') in self.w

    def linear(self, x, prefix):
        bias = self.p(prefix + '.bias') if self.has(prefix + '.bias') else None
        return torch.nn.functional.linear(x, self.p(prefix + '.weight'), bias)

    def rms_norm(self, x, name):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.p(name) * (x * torch.rsqrt(variance + self.cfg.eps))

    def rope(self, positions):
        freqs = positions[:, :, None].float() * self.inv_freq[None, None, :]  # [B, T, D/2]
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [B, 1, T, D]
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def forward(self, ids, mask, positions, past=None, hooks=None):
        """Returns the final hidden states [B, T, C] (before the final norm) and the new cache."""
        cfg, hooks = self.cfg, hooks or {}
        B, T = ids.shape
        x = torch.nn.functional.embedding(ids, self.p('model.embed_tokens.weight'))
        cos, sin = self.rope(positions)
        P = 0 if past is None else past[0][0].shape[2]
        keys = torch.arange(P + T)
        causal = keys[None, :] <= (P + torch.arange(T))[:, None]  # [T, K]
        allowed = causal[None, None] & mask[:, None, None, :].bool()  # [B, 1, T, K]
        bias = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
        cache = []
        for l in range(cfg.layers):
            pre = f'model.layers.{l}'
            h = self.rms_norm(x, f'{pre}.input_layernorm.weight')
            if 'attn_in' in hooks:
                h = hooks['attn_in'](l, h)
            q = self.linear(h, f'{pre}.self_attn.q_proj').view(B, T, cfg.heads, cfg.head_dim).transpose(1, 2)
            k = self.linear(h, f'{pre}.self_attn.k_proj').view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
            v = self.linear(h, f'{pre}.self_attn.v_proj').view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            if past is not None:
                k, v = torch.cat([past[l][0], k], dim=2), torch.cat([past[l][1], v], dim=2)
            cache.append((k, v))
            rep = cfg.heads // cfg.kv_heads
            kr, vr = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            scores = q @ kr.transpose(2, 3) / math.sqrt(cfg.head_dim) + bias
            z = (torch.softmax(scores, dim=-1) @ vr).transpose(1, 2)  # [B, T, H, D]
            if 'z' in hooks:
                z = hooks['z'](l, z)
            x = x + self.linear(z.reshape(B, T, -1), f'{pre}.self_attn.o_proj')
            h = self.rms_norm(x, f'{pre}.post_attention_layernorm.weight')
            gate = self.linear(h, f'{pre}.mlp.gate_proj')
            x = x + self.linear(torch.nn.functional.silu(gate) * self.linear(h, f'{pre}.mlp.up_proj'), f'{pre}.mlp.down_proj')
        return x, cache

    def logits(self, hidden):
        head = self.p('lm_head.weight') if self.has('lm_head.weight') else self.p('model.embed_tokens.weight')
        return torch.nn.functional.linear(self.rms_norm(hidden, 'model.norm.weight'), head)

    # ---- what the tasks call, on either peer ----

    def last_logits(self, ids, mask, positions, hooks=None):
        """[B, V]: the next-token logits at the last position."""
        return self.logits(self(ids, mask, positions, hooks=hooks)[0][:, -1])

    def all_logits(self, ids, mask, positions):
        """[B, T, V], with gradients where parameters require them."""
        return self.logits(self(ids, mask, positions)[0])

    def generate(self, prompts, new_tokens):
        """[B, new_tokens]: greedy decoding with a KV cache, no stop token."""
        ids, mask, positions = left_padded(prompts)
        hidden, cache = self(ids, mask, positions)
        token = self.logits(hidden[:, -1]).argmax(-1)
        tokens = [token]
        position = positions[:, -1]
        for _ in range(new_tokens - 1):
            position = position + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            hidden, cache = self(token[:, None], mask, position[:, None], past=cache)
            token = self.logits(hidden[:, -1]).argmax(-1)
            tokens.append(token)
        return torch.stack(tokens, dim=1)

    def params(self):
        return list(self.w.values())

    def sync(self):
        pass


class TransformersPeer:
    """The checkpoint as transformers runs it (AutoModelForCausalLM, its default attention), on `device` in `dtype`:
    the peer an engineer with a GPU compares against. Hooks are the same two sites as the decoder's, placed as
    TransformerLens-style users place them with torch hooks: each head's output is o_proj's input, and the attention
    block's input after its norm is input_layernorm's output."""

    def __init__(self, folder, device, dtype):
        from transformers import AutoModelForCausalLM
        self.cfg = Config(folder)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        except TypeError:  # transformers 4 names it torch_dtype
            model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=dtype)
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        self.named = dict(self.model.named_parameters())

    def p(self, name):
        return self.named[name]

    def has(self, name):
        return name in self.named

    def params(self):
        return list(self.named.values())

    def sync(self):
        torch.cuda.synchronize()

    def hooked(self, hooks):
        layers, cfg, handles = self.model.model.layers, self.cfg, []
        for l, layer in enumerate(layers):
            if 'z' in hooks:
                def pre(module, args, l=l):
                    (x,) = args
                    z = hooks['z'](l, x.view(*x.shape[:2], cfg.heads, cfg.head_dim))
                    return (z.reshape(x.shape),)
                handles.append(layer.self_attn.o_proj.register_forward_pre_hook(pre))
            if 'attn_in' in hooks:
                handles.append(layer.input_layernorm.register_forward_hook(lambda module, args, out, l=l: hooks['attn_in'](l, out)))
        return handles

    def last_logits(self, ids, mask, positions, hooks=None):
        handles = self.hooked(hooks or {})
        try:
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device), logits_to_keep=1)
        finally:
            for h in handles:
                h.remove()
        return out.logits[:, -1].float()

    def all_logits(self, ids, mask, positions):
        return self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device)).logits.float()

    def generate(self, prompts, new_tokens):
        ids, mask, _ = left_padded(prompts)
        out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), max_new_tokens=new_tokens,
                                  min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        return out[:, ids.shape[1]:]


def left_padded(prompts, pad=0):
    """ids, mask and positions [B, T] as transformers' generate builds them for left-padded prompts."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    positions[mask == 0] = 1
    return ids, mask, positions


# ---- timing ----

def timed(model, fn, runs):
    """fn once to warm up, then the fastest of `runs` more calls (the least disturbed by whatever else the machine
    runs), each waited for to its end on the device; returns (seconds, last result)."""
    result = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        model.sync()
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def save(out, name, tensor):
    tensor.detach().to(torch.float32).cpu().contiguous().numpy().tofile(os.path.join(out, name))


# ---- tasks ----

def forward_task(model, spec, out):
    """Last-position logits of a batch of prompts."""
    ids, mask, positions = left_padded(spec['prompts'])
    seconds, logits = timed(model, lambda: model.last_logits(ids, mask, positions), spec['runs'])
    save(out, 'logits.f32', logits)
    return {'seconds': seconds}


def generate_task(model, spec, out):
    """Greedy decoding with a KV cache, no stop token."""
    seconds, tokens = timed(model, lambda: model.generate(spec['prompts'], spec['maxNewTokens']), spec['runs'])
    return {'seconds': seconds, 'tokens': tokens.tolist()}


def patching_task(model, spec, out):
    """Path patching as TransformerLens users write it: the clean and corrupt runs cached once, then one hooked forward
    per head that patches the head's output at the last position with the corrupt run's and holds every later
    layer's attention input at the clean run's values. Returns the targets' logits per head."""
    cfg = model.cfg
    clean, corrupt = spec['reference'], spec['counterfactual']
    cached = {'z': {}, 'attn_in': {}}

    def record(kind):
        def hook(layer, value):
            cached[kind][layer] = value
            return value
        return hook

    def run(prompt, hooks):
        ids, mask, positions = left_padded([prompt])
        return model.last_logits(ids, mask, positions, hooks=hooks)[0]

    clean_logits = run(clean, {'z': record('z'), 'attn_in': record('attn_in')})
    clean_cache = {kind: dict(values) for kind, values in cached.items()}
    run(corrupt, {'z': record('z')})
    corrupt_z = dict(cached['z'])
    targets = torch.tensor(spec['targets'], device=clean_logits.device)

    def patched(layer, head):
        def z_hook(l, z):
            if l != layer:
                return z
            z = z.clone()
            z[:, -1, head] = corrupt_z[l][:, -1, head]
            return z

        def attn_in_hook(l, x):
            return clean_cache['attn_in'][l] if l > layer else x
        return run(clean, {'z': z_hook, 'attn_in': attn_in_hook})[targets]

    heads = spec['heads']
    start = time.perf_counter()
    results = torch.stack([patched(l, h) for l, h in heads])
    model.sync()
    seconds = time.perf_counter() - start
    save(out, 'patched.f32', results)
    return {'secondsPerHead': seconds / len(heads), 'reference': clean_logits[targets].tolist(), 'heads': cfg.layers * cfg.heads}


def training_task(mode):
    def task(model, spec, out):
        """Optimizer steps of torch.optim.AdamW, on every parameter or on the tuned heads' q rows and o columns only
        (whole q_proj / o_proj tensors with their other entries' gradients zeroed, weight decay 0)."""
        cfg = model.cfg
        torch.set_grad_enabled(True)
        trained = []
        if mode == 'full':
            for p in model.params():
                p.requires_grad_(True)
                trained.append(p)
        else:
            masks = {}
            for layer, head in spec['heads']:
                rows = slice(head * cfg.head_dim, (head + 1) * cfg.head_dim)
                for proj, axis in (('q_proj', 0), ('o_proj', 1)):
                    p = model.p(f'model.layers.{layer}.self_attn.{proj}.weight')
                    mask = masks.setdefault(id(p), torch.zeros_like(p))
                    if axis == 0:
                        mask[rows] = 1
                    else:
                        mask[:, rows] = 1
                    if not p.requires_grad:
                        p.requires_grad_(True)
                        p.register_hook(lambda g, m=mask: g * m)
                        trained.append(p)
                    bias_name = f'model.layers.{layer}.self_attn.{proj}.bias'
                    if axis == 0 and model.has(bias_name):
                        b = model.p(bias_name)
                        bmask = masks.setdefault(id(b), torch.zeros_like(b))
                        bmask[rows] = 1
                        if not b.requires_grad:
                            b.requires_grad_(True)
                            b.register_hook(lambda g, m=bmask: g * m)
                            trained.append(b)
        h = spec['adamw']
        optimizer = torch.optim.AdamW(trained, lr=h['lr'], betas=(h['beta1'], h['beta2']), eps=h['eps'], weight_decay=h['weightDecay'])
        ids = torch.tensor(spec['ids'])
        labels = torch.tensor(spec['labels'], device=trained[0].device)
        mask = torch.ones_like(ids)
        positions = torch.arange(ids.shape[1])[None].expand_as(ids)
        losses = []

        def step():
            optimizer.zero_grad(set_to_none=True)
            logits = model.all_logits(ids, mask, positions)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, spec['maxGradNorm'])
            optimizer.step()
            losses.append(loss.item())  # .item() waits for the step on the device

        first = time.perf_counter()
        step()
        first = time.perf_counter() - first
        times = []
        for _ in range(spec['steps']):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        for i, name in enumerate(spec['compare']):
            save(out, f'param{i}.f32', model.p(name))
        return {'seconds': min(times), 'firstSeconds': first, 'losses': losses}
    return task


TASKS = {'forward': forward_task, 'generate': generate_task, 'patching': patching_task, 'heads': training_task('heads'), 'full': training_task('full')}


def main():
    task, spec_file, out = sys.argv[1:4]
    with open(spec_file) as f:
        spec = json.load(f)
    if spec.get('peer', 'decoder') == 'transformers':
        model = TransformersPeer(spec['model'], spec['device'], TORCH_DTYPES[spec['dtype']])
    elif spec['device'] == 'cpu' and spec['dtype'] == 'float32':
        model = Decoder(spec['model'])
    else:
        raise ValueError(f"the decoder peer runs float32 on the CPU; {spec['dtype']} on {spec['device']} is transformers' to run")
    result = TASKS[task](model, spec, out)
    result['peakRssBytes'] = peak_rss_bytes()
    result['threads'] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == '__main__':
    main()
