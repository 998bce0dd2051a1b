"""The MLPs of Chughtai et al. (2023) and of devinterp's grokking example at their own settings:
each paper's module written out here in plain torch (from their public code) gives the weights
and logits that grokinterp's fast and hooked forwards give; `init pytorch` draws devinterp's
initial weights value for value; `optimizer adam` is torch.optim.Adam; independent minibatches
are a pure function of (seed, step), resume bit for bit and train as a plain torch loop does;
the presets hold the papers' stated values; a flag that changes a paper's model is refused."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grokinterp import data
from grokinterp.analysis.llc.estimator import LLCSettings
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.presets import CHUGHTAI_TRAIN_FRACS, DEVINTERP_LLC, PRESETS, preset
from grokinterp.storage import store
from grokinterp.training import batch_state
from grokinterp.training.loop import (
    epoch_batches,
    independent_batch,
    resume_runs,
    steps_per_epoch,
    train_runs,
)
from grokinterp.training.recipe import optimizers
from tests.helpers import Killed, killed_at_write
from tests.test_crash import assert_same_files, contents
from tests.test_train_mistakes import refused


# ---- the papers' modules, written out from their code ------------------------------------------
class ChughtaiMLP(nn.Module):
    """OneLayerMLP (rep_theory/utils/models.py): torch.manual_seed(seed), then W_x, W_y
    randn(n, e) / sqrt(e), W randn(2e, h) / sqrt(2e), W_U randn(h, n) / sqrt(h); logits
    relu(hstack(W_x[x], W_y[y]) @ W) @ W_U, no biases."""

    def __init__(self, n: int, embed: int, hidden: int, seed: int):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.W_x = nn.Parameter(torch.randn(n, embed) / np.sqrt(embed))
            self.W_y = nn.Parameter(torch.randn(n, embed) / np.sqrt(embed))
            self.W = nn.Parameter(torch.randn(2 * embed, hidden) / np.sqrt(2 * embed))
            self.W_U = nn.Parameter(torch.randn(hidden, n) / np.sqrt(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = torch.hstack((self.W_x[x[:, 0]], self.W_y[x[:, 1]]))
        return torch.relu(stacked @ self.W) @ self.W_U

    def grokinterp_weights(self) -> dict[str, torch.Tensor]:
        return {
            "embed.W_E_a": self.W_x,
            "embed.W_E_b": self.W_y,
            "blocks.0.mlp.W_in": self.W,
            "unembed.W_U": self.W_U,
        }


class DevinterpMLP(nn.Module):
    """devinterp's examples/grokking.ipynb MLP, built in its order after torch.manual_seed(seed):
    a shared nn.Embedding(p, e), linear1r and linear1l nn.Linear(e, h) with bias, linear2
    nn.Linear(h, p) without; logits linear2(gelu(linear1l(E[a]) + linear1r(E[b])))."""

    def __init__(self, p: int, embed: int, hidden: int, seed: int):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(p, embed)
            self.linear1r = nn.Linear(embed, hidden, bias=True)
            self.linear1l = nn.Linear(embed, hidden, bias=True)
            self.linear2 = nn.Linear(hidden, p, bias=False)

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear1l(self.embedding(x[..., 0])) + self.linear1r(self.embedding(x[..., 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(nn.GELU()(self.pre(x)))

    def grokinterp_weights(self) -> dict[str, torch.Tensor]:
        return {
            "embed.W_E": self.embedding.weight,
            "blocks.0.mlp.W_in": torch.cat([self.linear1l.weight.T, self.linear1r.weight.T]),
            "blocks.0.mlp.b_in_a": self.linear1l.bias,
            "blocks.0.mlp.b_in_b": self.linear1r.bias,
            "unembed.W_U": self.linear2.weight.T,
        }


TINY = {"p": 11, "d_model": 4, "d_mlp": 8, "batch_size": 8, "train_frac": 0.5}
"""devinterp's settings on a task small enough for a test."""


def all_pairs(n: int) -> torch.Tensor:
    a, b = data.pair_operands(n)
    return torch.stack([a, b], dim=1)


def grokinterp_logits(cfg, weights):
    """Fast and hooked logits [pairs, classes] of every pair, and the hooked cache."""
    model = architecture(cfg)
    pairs = all_pairs(cfg.n_elements)
    batched = {name: w.detach()[None] for name, w in weights.items()}
    fast = model.logits(batched, pairs[None, :, 0], pairs[None, :, 1])[0]
    hooked = model.hooked()
    hooked.load_state_dict({name: w.detach() for name, w in weights.items()})
    tokens = data.tokens(cfg, pairs[:, 0], pairs[:, 1])
    logits, cache = hooked.run_with_cache(tokens)
    return fast, logits[:, -1], cache


# ---- models -----------------------------------------------------------------------------------
def test_chughtai_mlp_forward_and_init_equal_their_code():
    cfg = preset("chughtai2023", "S3").replace(seed=2).validate()
    theirs = ChughtaiMLP(6, 256, 128, seed=2)
    ours = architecture(cfg).init_params()
    for name, weight in theirs.grokinterp_weights().items():  # the same draws, seed for seed
        torch.testing.assert_close(ours[name], weight.detach(), rtol=1e-6, atol=0)
    with torch.no_grad():
        expected = theirs(all_pairs(6))
    fast, hooked, _ = grokinterp_logits(cfg, theirs.grokinterp_weights())
    torch.testing.assert_close(fast, expected)
    torch.testing.assert_close(hooked, expected)


def test_devinterp_mlp_forward_and_pytorch_init_equal_their_code():
    cfg = preset("devinterp-grokking").replace(seed=3).validate()
    theirs = DevinterpMLP(53, 12, 48, seed=3)
    ours = architecture(cfg).init_params()
    weights = theirs.grokinterp_weights()
    assert list(ours) == list(architecture(cfg).param_shapes())
    for name, weight in weights.items():  # PyTorch's default init, value for value
        assert torch.equal(ours[name], weight.detach()), name
    with torch.no_grad():
        expected, pre = theirs(all_pairs(53)), theirs.pre(all_pairs(53))
    fast, hooked, cache = grokinterp_logits(cfg, weights)
    torch.testing.assert_close(fast, expected)
    torch.testing.assert_close(hooked, expected)
    torch.testing.assert_close(cache["blocks.0.mlp.hook_pre"], pre)


def test_the_pytorch_init_has_the_bounds_of_nn_linear():
    """U(-1/sqrt(k), 1/sqrt(k)) with k each nn.Linear's fan-in: per operand (12), not 24."""
    cfg = preset("devinterp-grokking").replace(d_model=400, d_mlp=300).validate()
    params = architecture(cfg).init_params()
    w_in, w_u = params["blocks.0.mlp.W_in"], params["unembed.W_U"]
    for values, fan_in in [(w_in, 400), (params["blocks.0.mlp.b_in_a"], 400), (w_u, 300)]:
        bound = 1 / math.sqrt(fan_in)
        assert values.abs().max() <= bound
        assert values.abs().max() > 0.99 * bound  # fills the interval
        # a uniform's variance bound^2 / 3, within 5 % at these sizes
        assert abs(values.var().item() / (bound**2 / 3) - 1) < 0.05
    assert abs(params["embed.W_E"].std().item() - 1) < 0.05  # nn.Embedding: N(0, 1)


def test_parameter_counts_equal_the_papers_modules():
    chughtai = architecture(preset("chughtai2023"))
    assert chughtai.n_parameters() == 2 * 120 * 256 + 512 * 128 + 128 * 120  # S5
    theirs = DevinterpMLP(53, 12, 48, seed=0)
    devinterp = architecture(preset("devinterp-grokking"))
    assert devinterp.n_parameters() == sum(p.numel() for p in theirs.parameters()) == 4428


# ---- Adam -------------------------------------------------------------------------------------
def test_adam_steps_equal_torch_optim_adam_per_run():
    cfg = preset("devinterp-grokking")
    lrs, wds = [5e-3, 2e-2], [2e-4, 0.3]
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, 4, generator=generator)
    grads = [torch.randn(2, 5, 4, generator=generator) for _ in range(3)]
    params = {"w": start.clone()}
    state = {"m.w": torch.zeros_like(start), "v.w": torch.zeros_like(start)}
    for t, grad in enumerate(grads, start=1):
        lr, wd = torch.tensor(lrs), torch.tensor(wds)
        optimizers.adam_(params, {"w": grad.clone()}, state, t, lr, wd, cfg)
    for r in range(2):
        weight = nn.Parameter(start[r].clone())
        reference = torch.optim.Adam(
            [weight], lr=lrs[r], betas=(0.9, 0.999), eps=1e-8, weight_decay=wds[r], foreach=False
        )
        for grad in grads:
            weight.grad = grad[r].clone()
            reference.step()
        torch.testing.assert_close(params["w"][r], weight.detach())


# ---- independent minibatches ------------------------------------------------------------------
def test_independent_batches_are_a_pure_function_of_seed_and_step(tiny_cfg):
    cfg = tiny_cfg.replace(batch_size=8, batch_sampling="independent").validate()
    first = independent_batch(cfg, 5)
    torch.manual_seed(999)  # the global generator plays no part
    assert torch.equal(independent_batch(cfg, 5), first)
    assert len(first) == 8 and len(set(first.tolist())) == 8
    assert first.tolist() == sorted(first.tolist()) and 0 <= first.min() <= first.max() < 60
    others = [independent_batch(cfg, 6), independent_batch(cfg.replace(seed=cfg.seed + 1), 5)]
    assert all(not torch.equal(other, first) for other in others)
    digest = hashlib.sha256(f"grokinterp independent batch {cfg.seed} 5".encode()).digest()
    seed = int.from_bytes(digest[:8], "little") & (2**63 - 1)
    drawn = torch.randperm(60, generator=torch.Generator().manual_seed(seed))[:8]
    assert torch.equal(first, drawn.sort().values)
    assert [b.tolist() for b in epoch_batches(cfg, 5)] == [first.tolist()]
    assert steps_per_epoch(cfg) == 1


def test_independent_batches_visit_each_pair_at_the_uniform_rate(tiny_cfg):
    """Over s steps each of the n_train pairs is drawn s * B / n_train times on average (a
    binomial count; 6 standard deviations of slack)."""
    cfg = tiny_cfg.replace(batch_size=8, batch_sampling="independent").validate()
    steps, n = 1500, cfg.n_train
    counts = torch.bincount(torch.cat([independent_batch(cfg, s) for s in range(steps)]), None, n)
    mean, var = steps * 8 / n, steps * (8 / n) * (1 - 8 / n)
    assert (counts - mean).abs().max() < 6 * math.sqrt(var)


def test_independent_minibatch_adam_training_equals_a_plain_torch_loop(tmp_path):
    """devinterp's loop in plain torch (their module, torch.optim.Adam, one batch per step) over
    the run's batches gives the run's weights."""
    cfg = preset("devinterp-grokking").replace(**TINY, epochs=6, save_every=6)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    theirs = DevinterpMLP(11, 4, 8, seed=cfg.seed)
    optimiser = torch.optim.Adam(
        theirs.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay
    )
    grid = data.train_indices(cfg)
    pairs = torch.stack([grid // 11, grid % 11], dim=1)
    label = (pairs[:, 0] + pairs[:, 1]) % 11
    for step in range(cfg.epochs):
        ix = independent_batch(cfg, step)
        loss = F.cross_entropy(theirs(pairs[ix]).double(), label[ix])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    got = store.load_checkpoint(store.checkpoint_path(tmp_path / "run", cfg.epochs))[0]
    start = architecture(cfg).init_params()
    for name, weight in theirs.grokinterp_weights().items():
        torch.testing.assert_close(got[name], weight.detach(), rtol=1e-4, atol=1e-5)
        assert (got[name] - start[name]).abs().max() > 1e-3, name  # it did move


def test_an_independent_batch_run_killed_at_any_write_resumes_to_the_unbroken_run(tmp_path):
    cfg = preset("devinterp-grokking").replace(**TINY, epochs=6, save_every=3)
    with killed_at_write(None) as count:
        train_runs([cfg], [tmp_path / "whole"], progress=False)
    expected = contents(tmp_path / "whole")
    for n in range(1, count[0] + 1):
        run = tmp_path / f"killed-{n}" / "run"
        with pytest.raises(Killed), killed_at_write(n):
            train_runs([cfg], [run], progress=False)
        group = batch_state.status(run)
        if group is None or group.step is None:
            shutil.rmtree(run)
            train_runs([cfg], [run], progress=False)
        elif group.finished:
            with pytest.raises(UsageError, match="already finished"):
                resume_runs([run], progress=False)
        else:
            resume_runs([run], progress=False)
        assert_same_files(run, expected, f"killed at write {n}")


# ---- presets ----------------------------------------------------------------------------------
PAPER_VALUES = {
    # Chughtai et al. 2023: rep_theory/utils/models.py OneLayerMLP, train_with_checkpoints.py,
    # batch_experiments/S5_MLP_seed1/cfg.json
    "chughtai2023": {
        "group": "S5",
        "operation": "compose",
        "train_frac": 0.4,
        "model": "mlp",
        "embedding": "separate",  # W_x, W_y
        "combine": "concat",  # hstack
        "d_model": 256,  # embed_dim
        "d_mlp": 128,  # hidden_dim
        "activation": "relu",
        "first_bias": "none",
        "init": "paper",  # randn / sqrt(fan-in)
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 1.0,
        "beta1": 0.9,
        "beta2": 0.98,
        "adam_eps": 1e-8,
        "warmup_steps": 1,  # constant lr
        "batch_size": None,  # full batch
        "epochs": 250_000,  # num_epochs
    },
    # devinterp examples/grokking.ipynb: ExperimentParams, MLP, train
    "devinterp-grokking": {
        "group": None,
        "p": 53,
        "operation": "add",
        "train_frac": 0.4,
        "model": "mlp",
        "embedding": "shared",  # one nn.Embedding
        "d_model": 12,  # embed_dim
        "d_mlp": 48,  # hidden_size
        "activation": "gelu",
        "first_bias": "per-operand",  # linear1l, linear1r bias=True
        "init": "pytorch",
        "optimizer": "adam",  # torch.optim.Adam
        "lr": 5e-3,
        "weight_decay": 2e-4,
        "beta1": 0.9,  # torch's default betas
        "beta2": 0.999,
        "adam_eps": 1e-8,
        "warmup_steps": 1,
        "batch_size": 128,
        "batch_sampling": "independent",  # a fresh DataLoader batch every step
        "epochs": 25_000,  # n_batches
        "seed": 0,  # random_seed
    },
}


@pytest.mark.parametrize("name", sorted(PAPER_VALUES))
def test_the_presets_hold_the_papers_values(name):
    cfg = PRESETS[name].validate()
    assert cfg.preset == name
    for field, value in PAPER_VALUES[name].items():
        assert getattr(cfg, field) == value, field


def test_the_devinterp_preset_saves_their_100_checkpoints_and_the_initial_weights():
    cfg = preset("devinterp-grokking")
    assert cfg.save_epochs == list(range(0, 25_001, 250))  # theirs: (i + 1) % 250 == 0
    assert cfg.n_train == int(0.4 * 53**2) == 1123


def test_the_devinterp_llc_settings_are_theirs():
    # examples/grokking.ipynb cells 17, 21: SGLD lr 3e-3, localization 5, nbeta 2, one chain
    # (num_chains is never passed), 500 draws, no burn-in, batches of 128
    assert DEVINTERP_LLC == {
        "lr": 3e-3,
        "localization": 5.0,
        "nbeta": 2.0,
        "chains": 1,
        "draws": 500,
        "burnin": 0,
        "batch_size": 128,
    }
    assert LLCSettings(**DEVINTERP_LLC).validate().nbeta_for(128) == 2.0


@pytest.mark.parametrize("group", sorted(CHUGHTAI_TRAIN_FRACS))
def test_chughtai_groups_take_their_training_fraction(group):
    # batch_experiments/<group>_MLP_seed1/cfg.json frac_train
    fracs = {"S5": 0.4, "A5": 0.5, "Z113": 0.3, "Z118": 0.3, "D59": 0.3, "D61": 0.3}
    cfg = preset("chughtai2023", group).validate()
    assert (cfg.group, cfg.train_frac) == (group, fracs[group])
    assert cfg.d_model == 256 and cfg.embedding == "separate"


@pytest.mark.parametrize(
    "name, args",
    [
        ("chughtai2023", ["--group", "S3"]),
        ("devinterp-grokking", ["--p", "11", "--batch-size", "16"]),
    ],
)
def test_a_tiny_run_of_each_preset_trains_and_records_every_value(name, args, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--preset", name, *args, "--epochs", "30", "--save-every", "10"]
    assert main([*base, "--lr", "0.01", "--out", str(run), "--quiet"]) == 0
    written = json.loads((run / store.CONFIG_FILE).read_text())
    expected = preset(name, "S3" if name == "chughtai2023" else None)
    expected = expected.replace(epochs=30, save_every=10, lr=0.01)
    if name == "devinterp-grokking":
        expected = expected.replace(p=11, batch_size=16)
    assert written == expected.to_dict()  # the flags override, every other value the preset's
    metrics = np.loadtxt(run / store.METRICS_FILE, delimiter=",", skiprows=1)
    assert metrics[-1, 1] < 0.9 * metrics[0, 1]  # train loss fell


@pytest.mark.parametrize(
    "name, flags, says",
    [
        ("chughtai2023", ["--embedding", "shared"], "--embedding shared contradicts"),
        ("chughtai2023", ["--d-mlp", "64"], "d_mlp 128"),
        ("chughtai2023", ["--model", "transformer"], "model mlp"),
        ("devinterp-grokking", ["--activation", "relu"], "activation gelu"),
        ("devinterp-grokking", ["--first-bias", "none"], "first_bias per-operand"),
        ("devinterp-grokking", ["--group", "S4"], "takes no --group"),
    ],
)
def test_a_flag_contradicting_the_papers_model_is_refused(name, flags, says, tmp_path, capsys):
    args = ["train", "--preset", name, *flags, "--out", str(tmp_path / "run"), "--quiet"]
    line = refused(capsys, tmp_path, args)
    assert says in line and name in line


def test_a_flag_of_the_papers_own_model_value_passes():
    cfg = preset("devinterp-grokking")
    assert preset("devinterp-grokking", model="mlp") == cfg


def test_independent_batches_need_a_batch_size(tmp_path, capsys):
    with pytest.raises(UsageError, match="give a batch_size"):
        preset("small").replace(batch_sampling="independent").validate()
    args = ["train", "--batch-sampling", "independent", "--out", str(tmp_path / "run")]
    assert "batch_size" in refused(capsys, tmp_path, [*args, "--quiet"])
