"""The model families: fast and hooked forwards agree, closed-form models give their known
measures, and the architecture settings are refused where they do not apply."""

from __future__ import annotations

import math

import pytest
import torch

from grokinterp.analysis.columns import measure_checkpoints
from grokinterp.analysis.measures import losses
from grokinterp.bases.fourier import fourier_basis
from grokinterp.cli import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.presets import preset
from grokinterp.tasks import task_of

TINY = dict(p=11, train_frac=0.5, d_model=16, n_heads=2, d_mlp=24, epochs=20, save_every=10)

FAMILIES = {
    "transformer": {},
    "transformer 2 layers": {"n_layers": 2},
    "transformer 3 layers, pre-LN, gelu": {
        "n_layers": 3,
        "layer_norm": "pre",
        "activation": "gelu",
    },
    "transformer 1 layer, pre-LN": {"layer_norm": "pre"},
    "transformer attention rate 0.3": {"attention_rate": 0.3},
    "transformer 2 layers, attention rate 0": {"n_layers": 2, "attention_rate": 0.0},
    "mlp": {"model": "mlp"},
    "mlp separate, sum, quadratic": {
        "model": "mlp",
        "embedding": "separate",
        "combine": "sum",
        "activation": "quadratic",
    },
    "mlp 3 hidden layers, gelu": {"model": "mlp", "n_layers": 3, "activation": "gelu"},
}


def tiny(**changes):
    return preset("small").replace(preset="tiny", **TINY).replace(**changes).validate()


def random_params(cfg, seed: int = 0, scale: float = 0.4) -> dict[str, torch.Tensor]:
    """Every parameter random, biases and LayerNorm weights included (float32)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = architecture(cfg).param_shapes()
    return {name: torch.randn(shape, generator=gen) * scale for name, shape in shapes.items()}


@pytest.mark.parametrize("changes", FAMILIES.values(), ids=FAMILIES.keys())
def test_fast_forward_equals_the_hooked_module(changes):
    cfg = tiny(**changes)
    model = architecture(cfg)
    params = random_params(cfg)
    hooked = model.hooked()
    assert set(hooked.state_dict()) == set(model.state_names())
    frozen = {name for name, p in hooked.named_parameters() if not p.requires_grad}
    assert frozen == set(model.param_shapes()) - set(model.trained)
    hooked.load_state_dict(model.state_dict_of(params))
    n = cfg.n_elements
    a, b = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    tokens = torch.stack([a, b, torch.full_like(a, cfg.eq_token)], dim=1)
    with torch.no_grad():
        logits, cache = hooked.run_with_cache(tokens)
        fast = model.forward({k: v[None] for k, v in params.items()}, a[None], b[None])
    scale = logits.abs().max()
    torch.testing.assert_close(fast.logits[0], logits[:, -1], atol=2e-6 * scale, rtol=0)
    for layer, post in enumerate(fast.neurons):
        want = cache[f"blocks.{layer}.mlp.hook_post"]
        want = want[:, -1] if want.dim() == 3 else want
        torch.testing.assert_close(post[0], want, atol=2e-6 * want.abs().max(), rtol=0)
    for layer, pattern in enumerate(fast.patterns):
        want = cache[f"blocks.{layer}.attn.hook_pattern"][:, :, -1]  # [pair, head, key]
        torch.testing.assert_close(pattern[0], want, atol=5e-6, rtol=0)
    assert len(fast.neurons) == cfg.n_layers
    assert len(fast.patterns) == (cfg.n_layers if model.has_attention else 0)


def test_batched_runs_equal_separate_runs_for_every_family():
    for changes in FAMILIES.values():
        cfg = tiny(**changes)
        model = architecture(cfg)
        runs = [random_params(cfg, seed=s) for s in range(3)]
        stacked = {k: torch.stack([w[k] for w in runs]) for k in runs[0]}
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randint(0, cfg.p, (3, 40), generator=gen) for _ in range(2))
        together = model.logits(stacked, a, b)
        for r, weights in enumerate(runs):
            alone = model.logits({k: v[None] for k, v in weights.items()}, a[r, None], b[r, None])
            torch.testing.assert_close(together[r], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "rule, constant",
    [
        ("zhong", [[1, 0, 0], [1, 1, 0], [1, 1, 1]]),  # 1 on each key the query may see
        ("uniform-mix", [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]]),
    ],
)
def test_attention_rate_zero_is_constant_attention_exactly(rule, constant):
    cfg = tiny(n_layers=2, attention_rate=0.0, attention_rule=rule)
    model = architecture(cfg)
    params = random_params(cfg, scale=2.0)  # large scores: a learned pattern far from uniform
    hooked = model.hooked()
    hooked.load_state_dict(model.state_dict_of(params))
    tokens = torch.tensor([[1, 2, cfg.eq_token], [5, 7, cfg.eq_token]])
    _, cache = hooked.run_with_cache(tokens)
    causal = torch.tensor(constant)
    for layer in range(2):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert torch.equal(pattern, causal.expand_as(pattern))
    fast = model.forward(
        {k: v[None] for k, v in params.items()}, tokens[None, :, 0], tokens[None, :, 1]
    )
    for pattern in fast.patterns:
        assert torch.equal(pattern, causal[2].expand_as(pattern))
    one_layer = architecture(tiny(attention_rate=0.0, attention_rule=rule))
    fast = one_layer.forward(
        {k: v[None] for k, v in random_params(one_layer.cfg, scale=2.0).items()},
        tokens[None, :, 0],
        tokens[None, :, 1],
    )
    assert torch.equal(fast.patterns[0], causal[2].expand_as(fast.patterns[0]))


def test_attention_rate_one_is_the_default_model_bit_for_bit():
    cfg = tiny()
    params = {k: v[None] for k, v in random_params(cfg).items()}
    a, b = torch.arange(11)[None], torch.arange(11).flip(0)[None]
    default = architecture(cfg).logits(params, a, b)
    assert torch.equal(architecture(cfg.replace(attention_rate=1.0)).logits(params, a, b), default)


def test_two_layers_with_a_zero_second_layer_give_the_one_layer_measures():
    one, two = tiny(), tiny(n_layers=2)
    params = random_params(one, scale=0.5)
    zero_block = {
        name: torch.zeros(shape)
        for name, shape in architecture(two).param_shapes().items()
        if name.startswith("blocks.1.")
    }
    train = torch.arange(0, 121, 2)
    keys = [1, 3]
    basis = fourier_basis(11)
    state_one = architecture(one).state_dict_of(params)
    state_two = architecture(two).state_dict_of(params | zero_block)
    table_one, fve_one = measure_checkpoints(one, [state_one], train, keys, basis)
    table_two, fve_two = measure_checkpoints(two, [state_two], train, keys, basis)
    for column in table_one.columns:
        want, got = table_one[column].to_numpy(), table_two[column].to_numpy()
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), column
    assert set(table_two.columns) - set(table_one.columns) == {
        c for c in table_two.columns if c.startswith(("L1.", "sq.blocks.1."))
    }
    torch.testing.assert_close(fve_two[:, : one.d_mlp], fve_one, atol=1e-5, rtol=0)
    # the zero second layer's neurons never vary: no variance to explain
    assert not fve_two[:, one.d_mlp :].any()
    assert table_two["L1.fve_share"].iloc[0] == 0


def gromov_mlp(p: int, k: int, phases: int = 3, scale: float = 4.0):
    """Gromov's quadratic MLP for (a + b) mod p (float64 weights), built to be exact.

    Embeddings (cos, sin) of theta x with theta = 2 pi k / p; for each of phases^2 neurons,
    (phi, psi) on a grid of 2 pi m / phases, pre = cos(theta a + phi) + cos(theta b + psi),
    read out by cos(theta c + phi + psi). On the grid every term of pre^2 but
    cos(theta (a + b) + phi + psi) sums to zero (phases >= 3), so the logits are
    scale * phases^2 / 2 * cos(theta (a + b - c))."""
    cfg = tiny(p=p, model="mlp", d_model=2, d_mlp=phases**2, activation="quadratic")
    theta = 2 * math.pi * k / p
    x = torch.arange(p, dtype=torch.float64)
    grid = 2 * math.pi * torch.arange(phases, dtype=torch.float64) / phases
    phi, psi = grid.repeat_interleave(phases), grid.repeat(phases)
    W_in = torch.stack([phi.cos(), -phi.sin(), psi.cos(), -psi.sin()])  # [2 d_model, neurons]
    W_U = scale * torch.cos(theta * x[None, :] + (phi + psi)[:, None])  # [neurons, p]
    params = {
        "embed.W_E": torch.stack([(theta * x).cos(), (theta * x).sin()], dim=1),
        "blocks.0.mlp.W_in": W_in,
        "unembed.W_U": W_U,
    }
    return cfg, params


def test_gromovs_quadratic_mlp_has_one_key_frequency_and_its_closed_form_measures():
    p, k = 11, 3
    cfg, params = gromov_mlp(p, k)
    task = task_of(cfg)
    model = architecture(cfg)
    n = p
    a, b = task.domain // n, task.domain % n
    logits = model.logits({name: t[None].double() for name, t in params.items()}, a[None], b[None])
    c = torch.arange(p)
    shift = (a[:, None] + b[:, None] - c).double()
    closed = 4.0 * 9 / 2 * torch.cos(2 * math.pi * k * shift / p)
    torch.testing.assert_close(logits[0], closed, atol=1e-9, rtol=0)

    from grokinterp.analysis.context import joined_embedding
    from grokinterp.analysis.measures import embedding

    basis = task.basis()
    state = model.state_dict_of(params)
    norms = embedding.embedding_norms(
        joined_embedding(model, {n: t[None] for n, t in state.items()}), basis
    )
    assert embedding.key_components(norms[0], basis) == [k]
    train = task.domain[::3]
    table, fve = measure_checkpoints(cfg, [state], train, [k], basis)
    loss = losses.cross_entropy(logits, task.labels).item()
    assert table["all_loss"].iloc[0] == pytest.approx(loss, rel=1e-5)
    assert table["restricted_loss"].iloc[0] == pytest.approx(table["all_loss"].iloc[0], rel=1e-5)
    assert table["logit_fve"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert table["excluded_loss"].iloc[0] == pytest.approx(math.log(p), abs=1e-5)
    # pre^2 holds cos(theta(a +- b) + ...) (variance 1/2 each) and cos(2 theta a + ...),
    # cos(2 theta b + ...) (variance 1/8 each): frequency k explains 1 / 1.25 of every neuron
    dominant = fve[0].argmax(dim=-1) + 1
    assert dominant.tolist() == [k] * cfg.d_mlp
    torch.testing.assert_close(
        fve[0, :, k - 1], torch.full((cfg.d_mlp,), 0.8, dtype=fve.dtype), atol=1e-5, rtol=0
    )
    assert table["W_L.k3"].iloc[0] ** 2 == pytest.approx(
        (table[[f"W_L.k{j}" for j in range(1, 6)]].iloc[0] ** 2).sum(), rel=1e-9
    )


def test_mlp_names_and_shapes():
    cfg = tiny(model="mlp", embedding="separate", combine="concat", n_layers=2)
    shapes = architecture(cfg).param_shapes()
    assert shapes == {
        "embed.W_E_a": (11, 16),
        "embed.W_E_b": (11, 16),
        "blocks.0.mlp.W_in": (32, 24),
        "blocks.1.mlp.W_in": (24, 24),
        "unembed.W_U": (24, 11),
    }
    hooked = architecture(cfg).hooked()
    assert set(hooked.hook_dict) >= {
        "hook_embed_a",
        "hook_embed_b",
        "hook_combined",
        "blocks.0.mlp.hook_pre",
        "blocks.1.mlp.hook_post",
    }


def test_transformer_with_layer_norm_has_transformer_lens_names():
    cfg = tiny(n_layers=2, layer_norm="pre")
    shapes = architecture(cfg).param_shapes()
    for name in ("blocks.1.ln1.w", "blocks.1.ln2.b", "ln_final.w", "blocks.1.attn.W_Q"):
        assert name in shapes
    init = architecture(cfg).init_params()
    assert torch.equal(init["ln_final.w"], torch.ones(16))
    assert not init["ln_final.b"].any()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "cnn"}, "unknown model"),
        ({"n_layers": 0}, "n_layers"),
        ({"n_layers": 5}, "n_layers"),
        ({"attention_rate": 1.5}, "attention_rate"),
        ({"attention_rate": float("nan")}, "attention_rate"),
        ({"activation": "tanh"}, "activation"),
        ({"model": "mlp", "attention_rate": 0.5}, "no part for attention_rate"),
        ({"model": "mlp", "layer_norm": "pre"}, "no part for layer_norm"),
        ({"combine": "sum"}, "no part for combine"),
        ({"embedding": "separate"}, "no part for embedding"),
    ],
)
def test_bad_architecture_settings_are_refused(changes, message):
    with pytest.raises(UsageError, match=message):
        preset("small").replace(**changes).validate()


@pytest.mark.parametrize(
    "flags",
    [
        ["--model", "cnn"],
        ["--n-layers", "0"],
        ["--attention-rate", "2"],
        ["--model", "mlp", "--n-heads", "2"],
        ["--model", "mlp", "--layer-norm", "pre"],
        ["--combine", "sum"],
    ],
)
def test_cli_refuses_bad_architecture_flags_in_one_line(flags, tmp_path, capsys):
    assert main(["train", *flags, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    assert not (tmp_path / "run").exists()


def test_default_config_json_is_unchanged_by_the_architecture_fields():
    data = preset("small").to_dict()
    for name in ("model", "n_layers", "layer_norm", "attention_rate", "activation"):
        assert name not in data
    mlp = preset("small").replace(model="mlp").to_dict()
    assert mlp["model"] == "mlp"


TRAINED_FAMILIES = {
    "mlp separate": {"model": "mlp", "embedding": "separate"},
    "transformer 2 layers pre-LN": {"n_layers": 2, "layer_norm": "pre"},
}


def _weights(run_dir):
    from grokinterp.storage.run import open_run

    return open_run(run_dir).state_dict()


@pytest.mark.parametrize("changes", TRAINED_FAMILIES.values(), ids=TRAINED_FAMILIES.keys())
def test_batched_training_and_resume_work_for_every_family(changes, tmp_path):
    from grokinterp.training.loop import resume_runs, train_runs

    cfg = tiny(**changes, epochs=30)
    cfgs = [cfg.replace(seed=1), cfg.replace(seed=2, weight_decay=0.3)]
    train_runs(cfgs, [tmp_path / "together0", tmp_path / "together1"], progress=False)
    for i, one in enumerate(cfgs):
        train_runs([one], [tmp_path / f"alone{i}"], progress=False)
        together, alone = _weights(tmp_path / f"together{i}"), _weights(tmp_path / f"alone{i}")
        for name in alone:
            torch.testing.assert_close(together[name], alone[name], rtol=1e-4, atol=1e-5)
    # a run stopped at epoch 20 and trained on to 30 equals the unbroken run, byte for byte
    train_runs([cfgs[0].replace(epochs=20)], [tmp_path / "short"], progress=False)
    resume_runs([tmp_path / "short"], progress=False, epochs=30)
    unbroken, resumed = _weights(tmp_path / "alone0"), _weights(tmp_path / "short")
    assert all(torch.equal(unbroken[k], resumed[k]) for k in unbroken)
    # the hooked module trains the same weights as the fast forward
    train_runs([cfgs[0]], [tmp_path / "hooked"], progress=False, engine="hooked")
    hooked = _weights(tmp_path / "hooked")
    for name in unbroken:
        torch.testing.assert_close(hooked[name], unbroken[name], rtol=1e-4, atol=1e-5)


def test_analysis_and_report_of_every_family(tmp_path):
    from grokinterp.analysis.analyze import analyze_run
    from grokinterp.report.page import build_figures
    from grokinterp.storage.analysis_format import load_analysis
    from grokinterp.training.loop import train_runs

    mlp = tiny(model="mlp", n_layers=2, epochs=40, save_every=10)
    deep = tiny(n_layers=2, epochs=40, save_every=10)
    train_runs([mlp], [tmp_path / "mlp"], progress=False)
    train_runs([deep], [tmp_path / "deep"], progress=False)
    for name, cfg in (("mlp", mlp), ("deep", deep)):
        out = analyze_run(tmp_path / name, tmp_path / f"analysis-{name}", progress=False).path
        analysis = load_analysis(out)
        summary = analysis.summary
        assert [layer["prefix"] for layer in summary.layers] == ["", "L1."]
        assert analysis.neurons["fve"].shape == (5, 2 * cfg.d_mlp)
        figures = build_figures(analysis)
        assert {"clusters", "clusters_L1", "neuron_fve", "neuron_fve_L1"} <= set(figures)
        columns = set(analysis.measures.columns)
        assert {"L1.fve_share", "L1.gini_W_L"} <= columns
        if name == "mlp":
            assert "attention" in summary.not_applicable
            assert "W_L of hidden layer 0" in summary.not_applicable
            assert "gini_W_L" not in columns and not any(f.startswith("attention") for f in figures)
        else:
            assert {"gini_W_L", "W_L.k1"} <= columns
            assert {"attention", "attention_L1"} <= set(figures)
            assert summary.not_applicable == {}
