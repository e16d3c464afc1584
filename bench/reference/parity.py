"""Parity of the PyTorch reference with the engine: loads the weights and logits bench/reference/parity.ts wrote
(engine names and layouts: GPT-2 Conv1D [in, out], Llama nn.Linear [out, in]), runs models.py on the same rows and
prints the largest logit difference. Run: python3 bench/reference/parity.py /tmp/parity.json"""
import base64
import json
import re
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from models import build  # noqa: E402

GPT2 = [  # engine name -> (reference name, transposed)
    (r"^h\.(\d+)\.attn\.c_attn\.(weight|bias)$", r"blocks.\1.c_attn.\2"),
    (r"^h\.(\d+)\.attn\.c_proj\.(weight|bias)$", r"blocks.\1.attn_proj.\2"),
    (r"^h\.(\d+)\.mlp\.c_fc\.(weight|bias)$", r"blocks.\1.c_fc.\2"),
    (r"^h\.(\d+)\.mlp\.c_proj\.(weight|bias)$", r"blocks.\1.mlp_proj.\2"),
    (r"^h\.(\d+)\.(ln_\d)\.(weight|bias)$", r"blocks.\1.\2.\3"),
    (r"^ln_f\.", "norm."),
]
LLAMA = [
    (r"^model\.embed_tokens\.", "wte."),
    (r"^model\.layers\.(\d+)\.(self_attn|mlp)\.", r"blocks.\1."),
    (r"^model\.layers\.(\d+)\.", r"blocks.\1."),
    (r"^model\.norm\.", "norm."),
]


def load(path):
    """The dump's config, its weights as a state dict of models.py, its rows and the engine's logits."""
    dump = json.load(open(path))
    cfg = dump["config"]
    llama = cfg.get("architecture") == "llama"
    state = {}
    for w in dump["weights"]:
        name = w["name"]
        for pattern, repl in LLAMA if llama else GPT2:
            name = re.sub(pattern, repl, name)
        raw = bytearray(base64.b64decode(w["base64"]))  # little-endian float32, as the engine holds them
        tensor = torch.frombuffer(raw, dtype=torch.float32).view(w["shape"])
        conv1d = not llama and tensor.dim() == 2 and not name.startswith(("wte", "wpe"))  # [in, out] -> [out, in]
        state[name] = tensor.t().contiguous() if conv1d else tensor
    return cfg, state, torch.tensor(dump["rows"]), torch.tensor(dump["logits"])


def main(path):
    cfg, state, rows, expected = load(path)
    model = build(cfg, state)
    with torch.no_grad():
        logits = model.logits(model.hidden(rows)[0])
    diff = (logits - expected.view(logits.shape)).abs().max().item()
    print(json.dumps({"architecture": cfg.get("architecture", "gpt2"), "maxAbsDiff": diff,
                      "maxAbsLogit": expected.abs().max().item()}))


if __name__ == "__main__":
    main(sys.argv[1])
