"""Training recipes: each intervention against its paper's formula or a library's implementation,
defaults unchanged, bad settings refused, and recipe runs that resume bit for bit."""

import json
import math

import pytest
import torch

from grokinterp import data
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.storage import store
from grokinterp.storage.run import open_run
from grokinterp.training.loop import PaddedPairs, resume_runs, train_runs
from grokinterp.training.recipe import Recipe, filters, norm, objectives, optimizers

RECIPE_FIELDS = {
    *("objective", "temperature", "label_noise", "optimizer", "momentum", "muon_params"),
    *("perpendicular_grad", "grad_filter", "filter_alpha", "filter_window", "filter_lambda"),
    *("fixed_norm", "norm_cap", "precision"),
}
"""The recipe's settings, added after format version 1: absent from the JSON at their defaults."""


def test_default_configs_keep_their_json():
    cfg = preset("small")
    assert not RECIPE_FIELDS & set(cfg.to_dict())
    changed = cfg.replace(optimizer="sgd", momentum=0.5, fixed_norm=3.0)
    assert {"optimizer", "momentum", "fixed_norm"} <= set(changed.to_dict())
    assert type(cfg).from_json(changed.to_json()) == changed


def test_stablemax_equals_its_closed_form():
    # s(2, 0, -1) = (3, 1, 1/2): StableMax = (2/3, 2/9, 1/9)
    logits = torch.tensor([[[2.0, 0.0, -1.0]]])
    torch.testing.assert_close(
        objectives.stablemax(logits), torch.tensor([[[2 / 3, 2 / 9, 1 / 9]]], dtype=torch.float64)
    )
    labels = torch.tensor([[2]])
    assert objectives.stablemax_cross_entropy(logits, labels).item() == pytest.approx(math.log(9))
    gradient = torch.tensor([[[5.0, -5.0]]], requires_grad=True)  # both branches, no NaN
    objectives.stablemax_cross_entropy(gradient, torch.tensor([[0]])).sum().backward()
    assert torch.isfinite(gradient.grad).all()


def test_mse_and_temperature_equal_their_closed_forms():
    labels, mask = torch.tensor([[0, 1]]), torch.ones(1, 2, dtype=torch.float64)
    logits = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    mse = objectives.objective(preset("small").replace(objective="mse"))
    assert mse(logits, labels, mask).item() == pytest.approx((0 + 1 / 3) / 2)
    # logits (0, 2 ln 3) at T = 2 are (0, ln 3): softmax (1/4, 3/4)
    hot = objectives.objective(preset("small").replace(temperature=2.0))
    two = torch.tensor([[[0.0, 2 * math.log(3)]]])
    assert hot(two, torch.tensor([[1]]), mask[:, :1]).item() == pytest.approx(-math.log(3 / 4))
    assert objectives.objective(preset("small")) is None  # plain CE: the recorded loss itself


def _random_params(runs=2):
    torch.manual_seed(1)
    return {"w": torch.randn(runs, 5, 3), "b": torch.randn(runs, 3)}


def test_grokfast_ema_step_equals_the_formula():
    alpha, lamb = 0.9, 2.0
    grads = [torch.randn(2, 4) for _ in range(3)]
    state = {"ema.w": torch.zeros(2, 4)}
    history = grads[0]
    for step, grad in enumerate(grads):
        history = grad if step == 0 else alpha * history + (1 - alpha) * grad
        filtered = {"w": grad.clone()}
        filters.ema_(filtered, state, step, alpha, lamb)
        torch.testing.assert_close(filtered["w"], grad + lamb * history)


def test_grokfast_ma_step_equals_the_formula():
    grads = [torch.randn(2, 4) for _ in range(4)]
    state = {"ma.w": torch.zeros(2, 2, 4)}
    for step, grad in enumerate(grads):
        filtered = {"w": grad.clone()}
        filters.ma_(filtered, state, step, window=2, lamb=5.0)
        expected = grad if step == 0 else grad + 5.0 * (grads[step - 1] + grad) / 2
        torch.testing.assert_close(filtered["w"], expected)


def test_grokfast_equals_pytorch_optimizer_step_for_step():
    grokfast = pytest.importorskip("pytorch_optimizer.optimizer.grokfast")
    model = torch.nn.Linear(4, 3)
    ours = {name: p.detach()[None].clone() for name, p in model.named_parameters()}
    ema = {f"ema.{name}": torch.zeros_like(t) for name, t in ours.items()}
    ma = {f"ma.{name}": torch.zeros(1, 3, *t.shape[1:]) for name, t in ours.items()}
    theirs_ema = theirs_ma = None
    for step in range(5):
        grads = {name: torch.randn_like(t) for name, t in ours.items()}
        for kind, state in (("ema", ema), ("ma", ma)):
            for name, p in model.named_parameters():
                p.grad = grads[name][0].clone()
            mine = {name: g.clone() for name, g in grads.items()}
            if kind == "ema":
                theirs_ema = grokfast.gradfilter_ema(model, theirs_ema, alpha=0.9, lamb=2.0)
                filters.ema_(mine, state, step, 0.9, 2.0)
            else:
                theirs_ma = grokfast.gradfilter_ma(model, theirs_ma, window_size=3, lamb=5.0)
                filters.ma_(mine, state, step, 3, 5.0)
            for name, p in model.named_parameters():
                torch.testing.assert_close(mine[name][0], p.grad)


def test_perpendicular_gradient_is_orthogonal_to_the_weights_and_keeps_its_norm():
    params = _random_params()
    grads = {name: torch.randn_like(t) + 3 * t for name, t in params.items()}
    before = {name: g.flatten(1).norm(dim=1) for name, g in grads.items()}
    optimizers.perpendicular_(params, grads)
    for name, grad in grads.items():
        dots = (grad * params[name]).flatten(1).sum(dim=1)
        assert dots.abs().max() < 1e-5 * before[name].max() * params[name].norm()
        torch.testing.assert_close(grad.flatten(1).norm(dim=1), before[name])
    # a ⊥SGD step (no momentum, no decay) moves each run's weights orthogonally to them
    cfg = preset("small").replace(
        p=11,
        d_model=16,
        n_heads=2,
        d_mlp=32,
        optimizer="sgd",
        momentum=0.0,
        perpendicular_grad=True,
    )
    recipe = Recipe([cfg])
    from grokinterp.models import architecture

    weights = {k: v[None] for k, v in architecture(cfg).init_params().items()}
    grads = {name: torch.randn_like(weights[name]) for name in recipe.trained}
    start = {name: weights[name].clone() for name in recipe.trained}
    recipe.step_(
        weights, grads, recipe.initial_state(weights), 0, torch.tensor([0.1]), torch.tensor([0.0])
    )
    for name in recipe.trained:
        move = weights[name] - start[name]
        assert abs(float((move * start[name]).sum())) < 1e-4 * float(
            move.norm() * start[name].norm() + 1e-12
        )


def test_perpendicular_gradient_equals_pytorch_optimizer_orthograd():
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    model = torch.nn.Linear(6, 4)
    params = {name: p.detach()[None].clone() for name, p in model.named_parameters()}
    state = {f"momentum.{name}": torch.zeros_like(t) for name, t in params.items()}
    theirs = pytorch_optimizer.OrthoGrad(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for _ in range(4):
        grads = {name: torch.randn_like(t) for name, t in params.items()}
        for name, p in model.named_parameters():
            p.grad = grads[name][0].clone()
        theirs.step()
        optimizers.perpendicular_(params, grads)
        optimizers.sgd_(params, grads, state, torch.tensor([0.1]), torch.tensor([0.0]), 0.9)
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name][0], p.detach(), rtol=1e-6, atol=1e-7)


def _matches_torch(params, ours, make_torch, lrs, wds, atol):
    """Four steps of our batched `ours(params, grads, state, lr, wd)` against one torch
    optimiser per run (`make_torch(tensors, lr, wd)`), on the same random gradients."""
    state = {f"momentum.{name}": torch.zeros_like(t) for name, t in params.items()}
    copies = [[t[r].clone().requires_grad_(True) for t in params.values()] for r in range(2)]
    torch_opts = [make_torch(copies[r], lrs[r], wds[r]) for r in range(2)]
    for _ in range(4):
        grads = {name: torch.randn_like(t) for name, t in params.items()}
        for r in range(2):
            for p, g in zip(copies[r], grads.values(), strict=True):
                p.grad = g[r].clone()
            torch_opts[r].step()
        ours(params, grads, state, torch.tensor(lrs), torch.tensor(wds))
        for r in range(2):
            for t, p in zip(params.values(), copies[r], strict=True):
                torch.testing.assert_close(t[r], p.detach(), rtol=1e-6, atol=atol)


def test_sgd_equals_torch_step_for_step():
    _matches_torch(
        _random_params(),
        lambda *args: optimizers.sgd_(*args, momentum=0.8),
        lambda ps, lr, wd: torch.optim.SGD(ps, lr=lr, momentum=0.8, weight_decay=wd),
        [0.1, 0.03],
        [0.5, 0.0],
        atol=1e-7,
    )


def test_muon_equals_torch_step_for_step():
    torch.manual_seed(2)
    _matches_torch(
        {"tall": torch.randn(2, 7, 3), "wide": torch.randn(2, 3, 7)},
        lambda *args: optimizers.muon_(*args, momentum=0.95),
        lambda ps, lr, wd: torch.optim.Muon(
            ps, lr=lr, weight_decay=wd, adjust_lr_fn="match_rms_adamw"
        ),
        [0.02, 0.005],
        [0.1, 1.0],
        atol=1e-6,
    )


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(tiny_cfg):
    recipe = Recipe([tiny_cfg.replace(optimizer="muon")])
    assert recipe.muon == ("blocks.0.mlp.W_in", "blocks.0.mlp.W_out")
    from grokinterp.models import architecture

    params = {k: v[None] for k, v in architecture(tiny_cfg).init_params().items()}
    state = recipe.initial_state(params)
    assert set(state) == {f"momentum.{n}" for n in recipe.muon} | {
        f"{k}.{n}" for k in "mv" for n in recipe.trained if n not in recipe.muon
    }


def _total_norms(run_dir, names):
    run = open_run(run_dir)
    return [
        math.sqrt(sum(float(run.state_dict(index=i)[n].double().pow(2).sum()) for n in names))
        for i in range(len(run.epochs))
    ]


def test_a_fixed_norm_run_keeps_its_norm(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(fixed_norm=7.5)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    norms = _total_norms(tmp_path / "run", Recipe([cfg]).trained)
    assert max(abs(n / 7.5 - 1) for n in norms) < 1e-6


def test_a_norm_cap_holds_each_matrix_below_k_times_its_initial_norm(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(norm_cap=1.0, weight_decay=0.0, lr=3e-2)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    run = open_run(tmp_path / "run")
    first, last = run.state_dict(index=0), run.state_dict()
    ratios = {
        name: float(last[name].norm() / first[name].norm())
        for name in Recipe([cfg]).trained
        if first[name].dim() >= 2
    }
    assert max(ratios.values()) < 1 + 1e-6
    assert max(ratios.values()) > 1 - 1e-6  # the cap bit: without it the weights grow
    assert set(norm.matrices({k: v[None] for k, v in first.items()}, ratios)) == set(ratios)


def test_label_noise_is_recorded_and_trained_on(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(label_noise=0.25)
    train_runs([cfg], [tmp_path / "run"], progress=False)
    noisy = store.read_noisy_labels(tmp_path / "run")
    train = store.read_split(tmp_path / "run")
    assert len(noisy) == round(0.25 * len(train)) and set(noisy) <= set(train.tolist())
    true = data.labels(cfg)
    assert all(int(true[i]) != label for i, label in noisy.items())
    pairs = PaddedPairs.stack([cfg], [train], "cpu", [noisy])
    changed = (pairs.label[0] != true[train]).sum()
    assert changed == len(noisy)
    assert len(json.loads((tmp_path / "run" / "split.json").read_text())["noisy_labels"]) > 0
    train_runs([tiny_cfg], [tmp_path / "clean"], progress=False)
    assert store.read_noisy_labels(tmp_path / "clean") == {}


@pytest.mark.parametrize("precision", ["float64", "bfloat16"])
def test_forward_precision_trains(tiny_cfg, tmp_path, precision):
    train_runs([tiny_cfg.replace(epochs=10, precision=precision)], [tmp_path / "r"], progress=False)
    train_runs([tiny_cfg.replace(epochs=10)], [tmp_path / "f"], progress=False)
    a, b = (store.read_metrics_array(tmp_path / n)[:, 1] for n in ("r", "f"))
    assert abs(a[0] - b[0]) < (1e-5 if precision == "float64" else 1e-1)
    assert a[0] != b[0]  # the forward did change precision


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "muon", "grad_filter": "ema", "label_noise": 0.2},
        {"optimizer": "sgd", "grad_filter": "ma", "filter_window": 7, "perpendicular_grad": True},
        {"objective": "stablemax", "norm_cap": 1.5, "temperature": 0.5},
        {"objective": "mse", "fixed_norm": 6.0},
    ],
)
def test_recipe_runs_train_on_bit_identically(tiny_cfg, tmp_path, changes):
    cfg = tiny_cfg.replace(**changes)
    train_runs([cfg.replace(epochs=40)], [tmp_path / "long"], progress=False)
    train_runs([cfg.replace(epochs=20)], [tmp_path / "short"], progress=False)
    resume_runs([tmp_path / "short"], progress=False, epochs=40)
    long, again = (
        open_run(tmp_path / "long").state_dict(),
        open_run(tmp_path / "short").state_dict(),
    )
    assert all(torch.equal(long[k], again[k]) for k in long)
    assert torch.equal(
        torch.as_tensor(store.read_metrics_array(tmp_path / "long")),
        torch.as_tensor(store.read_metrics_array(tmp_path / "short")),
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["--optimizer", "nadam"], "unknown optimizer"),
        (["--temperature", "-1"], "temperature"),
        (["--label-noise", "1"], "label_noise"),
        (["--label-noise", "-0.1"], "label_noise"),
        (["--fixed-norm", "10", "--norm-cap", "2"], "norm_cap"),
        (["--optimizer", "muon", "--muon-params", "blocks.0.attn.W_Q"], "cannot orthogonalise"),
        (["--optimizer", "muon", "--muon-params", "W_nope"], "not a trained parameter"),
        (["--momentum", "0.5"], "applies only with"),
        (["--grad-filter", "ma", "--filter-alpha", "0.5"], "applies only with"),
        (["--grad-filter", "ema", "--filter-alpha", "1"], "filter_alpha"),
        (["--objective", "hinge"], "unknown objective"),
        (["--precision", "float16"], "unknown precision"),
    ],
)
def test_bad_recipe_is_one_line_exit_2_and_writes_nothing(args, words, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "2", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_validation_refuses_bad_values_from_json():
    with pytest.raises(UsageError, match="perpendicular_grad"):
        preset("small").replace(perpendicular_grad="yes").validate()
