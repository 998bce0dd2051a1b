"""The transformer's fast last-position forward computes the hooked model's function."""

import torch

from grokinterp import data
from grokinterp.models import architecture
from grokinterp.presets import preset
from tests.test_model import random_model


def test_fast_logits_equal_the_hooked_model():
    for name in ("small", "canonical"):
        cfg = preset(name)
        model, weights = random_model(cfg, scale=0.3)
        tokens = data.all_tokens(cfg)
        with torch.no_grad():
            want = model(tokens)[:, -1]
            got = architecture(cfg).logits(
                {k: v[None] for k, v in weights.items()}, tokens[None, :, 0], tokens[None, :, 1]
            )[0]
        assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


def test_batched_runs_equal_separate_runs():
    cfg = preset("small")
    runs = [random_model(cfg, seed=s)[1] for s in range(3)]
    stacked = {k: torch.stack([w[k] for w in runs]) for k in runs[0]}
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, cfg.p, (3, 50), generator=gen)
    b = torch.randint(0, cfg.p, (3, 50), generator=gen)
    together = architecture(cfg).logits(stacked, a, b)
    for r, weights in enumerate(runs):
        alone = architecture(cfg).logits(
            {k: v[None] for k, v in weights.items()}, a[r, None], b[r, None]
        )
        assert ((together[r] - alone[0]).abs().max() / alone.abs().max()).item() < 1e-5
