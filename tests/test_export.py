"""`grokinterp export`: --to transformer-lens files load into TransformerLens 4's TL-native
TransformerBridge through its own checkpoint converter, and the bridge computes the logits of
grokinterp's fast forward; --to devinterp writes the notebook's names, mapped here by hand; and
every target imports back as the same run (config, split, weights bit for bit, measures.csv
bytes)."""

from __future__ import annotations

import json

import pytest
import torch

from grokinterp.cli import main
from grokinterp.models import architecture
from grokinterp.storage.export import CONFIG_FILE, STATE_FILE
from tests.test_importers import native_run
from tests.test_models import random_params


def random_state(cfg, seed: int = 0) -> dict:
    """Every parameter random, biases and LayerNorm weights included, so a dropped or misplaced
    tensor changes the logits."""
    return architecture(cfg).state_dict_of(random_params(cfg, seed))


def bridge_logits(out_dir, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at `=` of the exported files as TransformerLens 4 loads them."""
    from safetensors.torch import load_file
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    config = json.loads((out_dir / CONFIG_FILE).read_text())
    config.pop("grokinterp")
    tl_cfg = TransformerBridgeConfig(**config)
    bridge = TransformerBridge.boot_native(tl_cfg)
    converted = convert_tl_checkpoint(load_file(out_dir / STATE_FILE), tl_cfg)
    result = bridge.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        return bridge(tokens)[:, -1]


@pytest.mark.parametrize(
    "overrides", [{}, {"n_layers": 2, "layer_norm": "pre", "activation": "gelu"}]
)
def test_exported_checkpoint_gives_grokinterp_logits_in_transformer_lens(
    overrides, tiny_cfg, tmp_path, capsys
):
    cfg = tiny_cfg.replace(**overrides)
    states = [random_state(cfg, seed) for seed in range(3)]
    run = native_run(tmp_path / "run", cfg, list(range(0, cfg.p * cfg.p, 2)), [0, 10, 20], states)
    out = tmp_path / "tl"
    assert (
        main(["export", str(run), "--to", "transformer-lens", "--out", str(out), "--epoch", "10"])
        == 0
    )
    assert "epoch 10" in capsys.readouterr().out
    n = cfg.p
    a, b = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    tokens = torch.stack([a, b, torch.full_like(a, n)], dim=1)
    params = {name: t[None] for name, t in states[1].items()}
    expected = architecture(cfg).logits(params, a[None], b[None])[0]
    got = bridge_logits(out, tokens)
    assert got.shape == (n * n, n)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert json.loads((out / CONFIG_FILE).read_text())["grokinterp"]["epoch"] == 10


FORMAT_ROWS = {"a-b": lambda a, b, n: [a, b], "a-op-b-eq": lambda a, b, n: [a, n + 1, b, n]}
"""A pair (a, b) written out by hand in each new input format."""


@pytest.mark.parametrize("fmt", sorted(FORMAT_ROWS))
def test_each_input_format_exports_with_its_positions_and_vocabulary(fmt, tiny_cfg, tmp_path):
    """TransformerLens reads the run's own tokens (written here by hand: `=` is n, `op` n + 1)
    at its n_ctx and d_vocab, and computes grokinterp's logits at the last position."""
    cfg = tiny_cfg.replace(input_format=fmt, n_layers=2)
    state = random_state(cfg)
    run = native_run(tmp_path / "run", cfg, range(0, 60, 3), [5], [state])
    out = tmp_path / "tl"
    assert main(["export", str(run), "--to", "transformer-lens", "--out", str(out)]) == 0
    n = cfg.p
    written = json.loads((out / CONFIG_FILE).read_text())
    a, b = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    tokens = torch.tensor(
        [FORMAT_ROWS[fmt](x, y, n) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    )
    assert (written["n_ctx"], written["d_vocab"]) == (tokens.shape[1], int(tokens.max()) + 1)
    assert written["grokinterp"]["input_format"] == fmt
    params = {name: t[None] for name, t in state.items()}
    expected = architecture(cfg).logits(params, a[None], b[None])[0]
    torch.testing.assert_close(bridge_logits(out, tokens), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "args", "message"),
    [
        ({"model": "mlp"}, [], "a mlp run has no TransformerLens equivalent"),
        ({"attention_rate": 0.5}, [], "attention rate 0.5"),
        ({}, ["--epoch", "7"], "no checkpoint at epoch 7"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    overrides, args, message, tiny_cfg, tmp_path, capsys
):
    cfg = tiny_cfg.replace(**overrides)
    run = native_run(tmp_path / "run", cfg, [0, 1, 2], [0], [random_state(cfg)])
    out = tmp_path / "tl"
    assert main(["export", str(run), "--to", "transformer-lens", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("where", ["read_only", "under_file"])
def test_export_refuses_an_unwritable_out_in_one_line(where, tiny_cfg, tmp_path, capsys, request):
    run = native_run(tmp_path / "run", tiny_cfg, range(10), [0], [random_state(tiny_cfg)])
    (tmp_path / "f").write_text("x")
    parent = request.getfixturevalue("read_only") if where == "read_only" else tmp_path / "f"
    out = parent / "exported"
    assert main(["export", str(run), "--to", "transformer-lens", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"grokinterp: error: --out {out}: "), err
    assert not out.exists() and (tmp_path / "f").read_text() == "x"


ROUND_TRIPS = {
    "default": {},
    "gelu": {"activation": "gelu"},
    "layer_norm": {"layer_norm": "pre"},
    "two_layers": {"n_layers": 2},
    "mul": {"operation": "mul"},
    "recipe": {"lr": 0.01, "warmup_steps": 10, "init": "paper"},
    "group": {"group": "S3", "operation": "compose", "train_frac": 0.5},
    "input [a, b]": {"input_format": "a-b"},
    "input [a, op, b, =]": {"input_format": "a-op-b-eq", "group": "S4", "operation": "compose"},
}


@pytest.mark.parametrize("layout", ["grokinterp-export", "transformer-lens"])
@pytest.mark.parametrize("case", sorted(ROUND_TRIPS))
def test_export_then_import_gives_the_run_back(case, layout, tiny_cfg, tmp_path, capsys):
    """The imported run has the exported run's config (every field), split and weights, bit for
    bit, at the exported epoch, and analyses to the same numbers: whichever layout names the
    export."""
    cfg = tiny_cfg.replace(**ROUND_TRIPS[case])
    split = range(3, 36, 2)  # inside every case's domain (S3: 36 pairs)
    state = random_state(cfg)
    run = native_run(tmp_path / "run", cfg, split, [30], [state])
    assert main(["export", str(run), "--to", "transformer-lens", "--out", str(tmp_path / "x")]) == 0
    source = tmp_path / "x" / ("model.safetensors" if layout == "transformer-lens" else "")
    back = tmp_path / "back"
    assert main(["import", str(source), "--layout", layout, "--out", str(back)]) == 0
    capsys.readouterr()
    assert_same_run(run, back, cfg, split, {30: state})


def test_an_export_import_refuses_flags_it_would_ignore(tiny_cfg, tmp_path, capsys):
    run = native_run(tmp_path / "run", tiny_cfg, range(10), [0], [random_state(tiny_cfg)])
    assert main(["export", str(run), "--to", "transformer-lens", "--out", str(tmp_path / "x")]) == 0
    cmd = ["import", str(tmp_path / "x"), "--layout", "grokinterp-export", "--out", "y", "--p", "7"]
    capsys.readouterr()
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --p" in err[0]


def measures_bytes(run_dir, out_dir) -> bytes:
    from grokinterp.analysis.analyze import analyze_run

    return (analyze_run(run_dir, out_dir, progress=False).path / "measures.csv").read_bytes()


def assert_same_run(run, back, cfg, split, states) -> None:
    """`back` has `run`'s config (every field), split and checkpoints (epoch: state), bit for
    bit, and the analysis of both writes the same measures.csv bytes."""
    from grokinterp.storage import store

    assert store.read_config(back) == cfg
    assert store.read_split(back).tolist() == sorted(split)
    listed = store.list_checkpoints(back)
    assert [epoch for epoch, _ in listed] == sorted(states)
    for epoch, path in listed:
        loaded, state = store.load_checkpoint(path)[0], states[epoch]
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[name], state[name]) for name in state), epoch
    analysis = back.parent / "analyses"
    assert measures_bytes(run, analysis / "run") == measures_bytes(back, analysis / "back")


MLP = {"model": "mlp", "input_format": "a-b", "d_model": 4, "d_mlp": 8, "n_heads": 1}
SAFETENSORS_TRIPS = {
    "transformer": {},
    "mlp": MLP,
    "mlp quadratic, separate tables, sum": {
        **MLP, "activation": "quadratic", "embedding": "separate", "combine": "sum",
    },
    "mlp two layers with biases": {**MLP, "n_layers": 2, "first_bias": "per-operand"},
    "mlp on a group": {**MLP, "group": "S3", "operation": "compose"},
    "attention rate": {"attention_rate": 0.5, "attention_rule": "zhong"},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SAFETENSORS_TRIPS))
def test_safetensors_export_gives_every_family_back(case, tiny_cfg, tmp_path, capsys):
    """--to safetensors keeps grokinterp's own names: the import reproduces the run, MLPs and
    what TransformerLens cannot compute included."""
    cfg = tiny_cfg.replace(**SAFETENSORS_TRIPS[case])
    split = range(3, 36, 2)
    state = random_state(cfg)
    run = native_run(tmp_path / "run", cfg, split, [30], [state])
    out = tmp_path / "x"
    assert main(["export", str(run), "--to", "safetensors", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE, STATE_FILE]
    back = tmp_path / "back"
    assert main(["import", str(out), "--layout", "grokinterp-export", "--out", str(back)]) == 0
    capsys.readouterr()
    assert_same_run(run, back, cfg, split, {30: state})


def devinterp_cfg():
    from grokinterp.presets import preset

    return preset("devinterp-grokking").replace(
        p=11,
        d_model=4,
        d_mlp=8,
        batch_size=8,
        epochs=20,
        save_every=10,
        seed=3,
        data_seed=3,
        train_frac=0.5,
    )


def their_state(state: dict, e: int) -> dict:
    """A grokinterp state of devinterp's MLP in the notebook's names, written out by hand:
    nn.Linear weights are [out, in], so linear1l reads a's half of W_in and linear1r b's."""
    w = state["blocks.0.mlp.W_in"]
    return {
        "embedding.weight": state["embed.W_E"],
        "linear1l.weight": w[:e].T,
        "linear1l.bias": state["blocks.0.mlp.b_in_a"],
        "linear1r.weight": w[e:].T,
        "linear1r.bias": state["blocks.0.mlp.b_in_b"],
        "linear2.weight": state["unembed.W_U"].T,
    }


def test_devinterp_export_writes_their_layout_and_imports_as_the_run(tmp_path, capsys):
    cfg = devinterp_cfg()
    split = torch.randperm(121, generator=torch.Generator().manual_seed(0))[:60].tolist()
    states = {epoch: random_state(cfg, seed) for seed, epoch in enumerate([0, 10, 20])}
    run = native_run(tmp_path / "run", cfg, split, list(states), list(states.values()))
    out = tmp_path / "x"
    assert main(["export", str(run), "--to", "devinterp", "--out", str(out)]) == 0
    assert "epoch 20" in capsys.readouterr().out
    written = torch.load(out / "model.pt", weights_only=True)
    assert written["checkpoint_epochs"] == [0, 10, 20]
    for their, epoch in zip(written["checkpoints"], [0, 10, 20], strict=True):
        expected = their_state(states[epoch], cfg.d_model)
        assert their.keys() == expected.keys()
        assert all(torch.equal(their[k], expected[k]) for k in expected)
    assert sorted(written["train_indices"]) == sorted(split)
    back = tmp_path / "back"
    assert main(["import", str(out / "model.pt"), "--layout", "devinterp", "--out", str(back)]) == 0
    capsys.readouterr()
    assert_same_run(run, back, cfg, split, states)


@pytest.mark.parametrize(
    ("overrides", "args", "message"),
    [
        ({"optimizer": "adamw"}, [], "cannot state optimizer='adamw' (reads back as 'adam')"),
        ({"embedding": "separate"}, [], "one shared embedding"),
        ({"n_layers": 2}, [], "one hidden layer"),
        ({}, ["--epoch", "10"], "whole series; drop --epoch"),
    ],
)
def test_devinterp_export_refuses_what_the_layout_cannot_state(
    overrides, args, message, tmp_path, capsys
):
    cfg = devinterp_cfg().replace(**overrides)
    run = native_run(tmp_path / "run", cfg, range(60), [0, 10, 20], [random_state(cfg)] * 3)
    out = tmp_path / "x"
    assert main(["export", str(run), "--to", "devinterp", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["run"]
