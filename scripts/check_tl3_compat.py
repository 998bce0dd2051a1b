"""Check that a grokinterp checkpoint loads into TransformerLens 3's HookedTransformer unchanged.

Run it with an environment that has transformer-lens 3 (not 4, which removed HookedTransformer):

    python -m venv /tmp/tl3 && /tmp/tl3/bin/pip install torch==2.13.0 transformer-lens==3.9.0
    /tmp/tl3/bin/python scripts/check_tl3_compat.py CHECKPOINT.safetensors

It reads the config from the checkpoint's metadata (no grokinterp import needed), builds the
matching HookedTransformer, loads the state dict with strict=True, and prints the loss of the
last-position logits on all p^2 pairs, which must equal grokinterp's analysis of that checkpoint.
"""

import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig


def main(path: str) -> None:
    with safe_open(path, "pt") as handle:
        cfg = json.loads(handle.metadata()["config"])
    p = cfg["p"]
    model = HookedTransformer(
        HookedTransformerConfig(
            n_layers=1,
            d_model=cfg["d_model"],
            n_heads=cfg["n_heads"],
            d_head=cfg["d_model"] // cfg["n_heads"],
            d_mlp=cfg["d_mlp"],
            d_vocab=p + 1,
            d_vocab_out=p,
            n_ctx=3,
            act_fn="relu",
            normalization_type=None,
        )
    )
    model.load_state_dict(load_file(path), strict=True)
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    with torch.no_grad():
        logits = model(tokens)[:, -1].double()
    loss = torch.nn.functional.cross_entropy(logits, (a + b) % p)
    print(f"loaded {path} into HookedTransformer (strict); loss on all pairs {loss.item():.10g}")


if __name__ == "__main__":
    main(sys.argv[1])
