"""GPT-2 and the Llama family (Llama / Qwen2 / Qwen3 shapes) in plain torch.nn, eager fp32: the reference the
suite compares the engine with. Built from the engine's own GptConfig JSON (packages/model/src/config.ts), so both
sides run the same shape. Parameter layout is torch's (nn.Linear [out, in]); the maths is the engine's:
GPT-2 with tanh GELU and tied LM head; Llama with RMSNorm, RoPE (rotate_half), GQA, SwiGLU, optional q/k norm."""
import math

import torch
import torch.nn.functional as F
from torch import nn

INIT_STD = 0.02


def is_llama(cfg):
    return cfg.get("architecture") == "llama"


class RMSNorm(nn.Module):
    def __init__(self, d, eps, device):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, device=device))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def causal_attention(q, k, v):
    """q [B, H, T, hd], k/v [B, H, S, hd] with S >= T; query t sees keys up to S - T + t."""
    T, S = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if T > 1:
        mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class Gpt2Block(nn.Module):
    def __init__(self, cfg, device):
        super().__init__()
        d = cfg["nEmbd"]
        eps = cfg["layerNormEps"]
        self.n_head = cfg["nHead"]
        self.ln_1 = nn.LayerNorm(d, eps=eps, device=device)
        self.c_attn = nn.Linear(d, 3 * d, device=device)
        self.attn_proj = nn.Linear(d, d, device=device)
        self.ln_2 = nn.LayerNorm(d, eps=eps, device=device)
        self.c_fc = nn.Linear(d, 4 * d, device=device)
        self.mlp_proj = nn.Linear(4 * d, d, device=device)

    def forward(self, x, past, start):
        B, T, d = x.shape
        heads = lambda t: t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2)
        q, k, v = (heads(t) for t in self.c_attn(self.ln_1(x)).split(d, dim=-1))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, d)
        x = x + self.attn_proj(a)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, (k, v)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class LlamaBlock(nn.Module):
    def __init__(self, cfg, device):
        super().__init__()
        d, hd = cfg["nEmbd"], cfg["headDim"]
        self.H, self.G, self.hd = cfg["nHead"], cfg["numKvHeads"], hd
        eps = cfg["rmsNormEps"]
        self.input_layernorm = RMSNorm(d, eps, device)
        self.q_proj = nn.Linear(d, self.H * hd, bias=cfg["qkvBias"], device=device)
        self.k_proj = nn.Linear(d, self.G * hd, bias=cfg["qkvBias"], device=device)
        self.v_proj = nn.Linear(d, self.G * hd, bias=cfg["qkvBias"], device=device)
        self.o_proj = nn.Linear(self.H * hd, d, bias=cfg["oBias"], device=device)
        self.q_norm = RMSNorm(hd, eps, device) if cfg["qkNorm"] else None
        self.k_norm = RMSNorm(hd, eps, device) if cfg["qkNorm"] else None
        self.post_attention_layernorm = RMSNorm(d, eps, device)
        self.gate_proj = nn.Linear(d, cfg["intermediateSize"], bias=False, device=device)
        self.up_proj = nn.Linear(d, cfg["intermediateSize"], bias=False, device=device)
        self.down_proj = nn.Linear(cfg["intermediateSize"], d, bias=False, device=device)

    def forward(self, x, past, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.G, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.G, self.hd).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        group = self.H // self.G  # HF repeat_kv: query head h reads kv head h // group
        a = causal_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1))
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, self.H * self.hd))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h)), (k, v)


class Decoder(nn.Module):
    """The trunk, the LM head (tied or not) and, with scalar_head, a score head (reward / value model)."""

    def __init__(self, cfg, scalar_head=False, device="cpu"):
        super().__init__()
        self.cfg = cfg
        d, V = cfg["nEmbd"], cfg["vocabSize"]
        self.llama = is_llama(cfg)
        self.wte = nn.Embedding(V, d, device=device)
        if self.llama:
            self.blocks = nn.ModuleList(LlamaBlock(cfg, device) for _ in range(cfg["nLayer"]))
            self.norm = RMSNorm(d, cfg["rmsNormEps"], device)
            hd = cfg["headDim"]
            inv = 1.0 / cfg["ropeTheta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
            self.inv_freq = inv  # a plain tensor, not a buffer: to_empty would drop its values
            tied = cfg["tieWordEmbeddings"]
        else:
            self.wpe = nn.Embedding(cfg["maxPositions"], d, device=device)
            self.blocks = nn.ModuleList(Gpt2Block(cfg, device) for _ in range(cfg["nLayer"]))
            self.norm = nn.LayerNorm(d, eps=cfg["layerNormEps"], device=device)
            tied = True
        self.lm_head = None if tied else nn.Linear(d, V, bias=False, device=device)
        self.score = nn.Linear(d, 1, device=device) if scalar_head else None

    def hidden(self, ids, cache=None, start=0):
        """Final hidden states [B, T, d] of ids at positions start.. and the new KV cache (one (k, v) a layer)."""
        T = ids.shape[1]
        x = self.wte(ids)
        positions = torch.arange(start, start + T)
        if self.llama:
            angles = (positions[:, None].double() * self.inv_freq[None, :]).float()
            angles = torch.cat([angles, angles], dim=-1)
            cos, sin = angles.cos(), angles.sin()
        else:
            x = x + self.wpe(positions)
        present = []
        for i, block in enumerate(self.blocks):
            past = cache[i] if cache is not None else None
            x, kv = block(x, past, cos, sin) if self.llama else block(x, past, start)
            present.append(kv)
        return self.norm(x), present

    def logits(self, hidden):
        weight = self.wte.weight if self.lm_head is None else self.lm_head.weight
        return hidden @ weight.t()


def init_weights(model, seed):
    """Normal(0, 0.02) matrices and embeddings (GPT-2's residual projections / sqrt(2 L)), norms 1, biases 0."""
    gen = torch.Generator().manual_seed(seed)
    residual = INIT_STD / math.sqrt(2 * max(1, model.cfg["nLayer"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif name.endswith("norm.weight") or ".ln_" in name:
                p.fill_(1.0)
            else:
                std = residual if (not model.llama and name.endswith("proj.weight")) else INIT_STD
                p.normal_(0.0, std, generator=gen)
    return model


def random_weights(cfg, scalar_head, seed):
    """A state dict of random weights on the host (what the engine's initParams is to its sessions)."""
    model = Decoder(cfg, scalar_head, device="meta").to_empty(device="cpu")
    return {k: v.detach() for k, v in init_weights(model, seed).state_dict().items()}


def build(cfg, weights, scalar_head=False):
    """A model ready to run from host weights: modules on the meta device, storage, a copy of the weights."""
    model = Decoder(cfg, scalar_head, device="meta").to_empty(device="cpu")
    model.load_state_dict(weights)
    return model
