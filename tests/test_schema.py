"""The config's schema (grokinterp.schema, grokinterp.config.FIELDS): what is on disk reads and
writes back byte for byte, every command's flags are the schema's, the docs' tables are its
rendering, every choice it offers is implemented, and the one parameter count against closed
forms."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from grokinterp.cli.main import build_parser
from grokinterp.config import FIELDS, RunConfig, foreign_fields
from grokinterp.errors import UsageError
from grokinterp.presets import preset
from grokinterp.schema import Range, markdown_tables

REPO = Path(__file__).resolve().parents[1]


# ---- what is on disk ----------------------------------------------------------------------------
def shipped(folder: str, pattern: str) -> list[Path]:
    """The files under `folder` matching `pattern` that git tracks (what is shipped, not the
    runs and analyses made locally, e.g. by `grokinterp reproduce`); every match outside a git
    checkout."""
    found = sorted((REPO / folder).rglob(pattern))
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", folder], cwd=REPO, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return found
    tracked = {REPO / name for name in listed.decode().split("\0") if name}
    return [path for path in found if path in tracked]


def shipped_config_files() -> list[Path]:
    return sorted(
        path for folder in ("checkpoints", "analyses") for path in shipped(folder, "config.json")
    )


def test_every_shipped_config_json_writes_back_byte_for_byte():
    paths = shipped_config_files()
    assert paths  # checkpoints/reference-canonical/config.json at least
    for path in paths:
        text = path.read_text()
        assert RunConfig.from_json(text).to_json() == text, path


def test_the_config_in_every_shipped_checkpoint_writes_back_byte_for_byte():
    paths = shipped("checkpoints", "*.safetensors")
    assert paths
    for path in paths:
        with safe_open(str(path), "pt") as handle:
            text = handle.metadata()["config"]
        assert RunConfig.from_json(text).to_json() == text, path


def test_configs_inside_shipped_analyses_read_back_unchanged():
    """Summaries hold their run's config as a dict of the fields of their day, before
    attention_rule (format 1): each reads back to the same values."""
    found = 0
    for path in shipped("analyses", "*.json"):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            continue
        written = data["config"]
        cfg = RunConfig.from_dict({"format_version": 1, **written})
        values = dataclasses.asdict(cfg)
        assert {k: values[k] for k in written} == written, path
        found += 1
    assert found >= 6  # reference-canonical and the five seeds


def test_the_shipped_reference_run_keeps_its_fingerprint():
    from grokinterp.storage import store
    from grokinterp.storage.analysis_dir import run_fingerprint

    run = REPO / "checkpoints" / "reference-canonical"
    summary = json.loads((REPO / "analyses" / "reference-canonical" / "summary.json").read_text())
    train = torch.tensor(json.loads((run / "split.json").read_text())["train_indices"])
    assert run_fingerprint(store.read_config(run), train) == summary["run_fingerprint"]


def test_a_shipped_sweep_table_names_and_configures_its_runs_as_the_spec_does():
    """docs/sweeps/frac-study-table.csv was written by the sweep of frac-study.toml: its run
    names and config columns are what the spec plans today."""
    from grokinterp.sweep.spec import read_spec

    spec = read_spec(REPO / "docs" / "sweeps" / "frac-study.toml")
    with open(REPO / "docs" / "sweeps" / "frac-study-table.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == [run.name for run in spec.runs]
    for row, run in zip(rows, spec.runs, strict=True):
        for name, value in run.config.to_dict().items():
            if name in row:
                assert row[name] == str(value), (run.name, name)


def test_a_format_1_mlp_keeps_its_attention_rule():
    """An MLP written before attention_rule existed reads with the old rule, which it never
    reads, and writes back as it was."""
    cfg = preset("small").replace(model="mlp", attention_rule="uniform-mix").validate()
    text = cfg.to_json()
    assert '"format_version": 1' in text and "attention_rule" not in text
    assert RunConfig.from_json(text) == cfg


# ---- the fields' descriptions -------------------------------------------------------------------
def test_every_field_is_described():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(RunConfig)]
    for field in FIELDS.values():
        assert field.help.endswith(".") and len(field.help) > 20, field.name
        if field.sparse:  # left out of the JSON at its default, so it needs one
            assert field.has_default, field.name
        if field.only_with is not None:
            assert field.only_with[0] in FIELDS, field.name


def test_fields_of_reads_kinds_and_defaults_from_the_annotations():
    assert (FIELDS["p"].kind, FIELDS["p"].optional, FIELDS["p"].has_default) == (int, False, False)
    momentum = FIELDS["momentum"]
    assert (momentum.kind, momentum.optional, momentum.default) == (float, True, None)
    assert (FIELDS["perpendicular_grad"].kind, FIELDS["adam_eps"].default) == (bool, 1e-8)


@pytest.mark.parametrize(
    "interval, inside, outside, text",
    [
        (Range(0, 1, low_open=True, high_open=True), [0.5, 1e-9], [0, 1, -1], "(0, 1)"),
        (Range(0, 1, high_open=True), [0, 0.99], [1, -0.1], "[0, 1)"),
        (Range(0, 1), [0, 1], [1.01], "[0, 1]"),
        (Range(0, low_open=True), [1e-300, 5], [0, -1], "> 0"),
        (Range(1), [1, 10**9], [0], ">= 1"),
        (Range(high=4, high_open=True), [3.9, -10], [4], "< 4"),
    ],
)
def test_a_range_holds_what_its_text_says(interval, inside, outside, text):
    assert interval.text() == text
    assert all(x in interval for x in inside)
    assert not any(x in interval for x in outside)


def test_a_closed_range_of_whole_numbers_reads_as_from_to():
    assert Range(1, 4).text(whole=True) == "1..4"
    assert FIELDS["n_layers"].allowed == "1..4" and FIELDS["attention_rate"].allowed == "[0, 1]"


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("epochs", 2.0, "epochs must be a whole number, got 2.0"),
        ("epochs", True, "epochs must be a whole number"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("lr", "1e-3", "lr must be a finite number"),
        ("lr", 0.0, "lr must be > 0, got 0.0"),
        ("beta2", 1.0, r"beta2 must lie in \[0, 1\), got 1.0"),
        ("n_layers", 5, "n_layers must lie in 1..4, got 5"),
        ("activation", "tanh", "unknown activation 'tanh'; choose one of relu, gelu, quadratic"),
        ("perpendicular_grad", 1, "perpendicular_grad must be true or false"),
        ("batch_size", 0, "batch_size must be >= 1"),
    ],
)
def test_a_bad_value_is_named_with_what_the_field_allows(name, value, words):
    with pytest.raises(UsageError, match=words):
        preset("small").replace(**{name: value}).validate()


def test_optional_fields_take_none():
    preset("small").replace(momentum=None, batch_size=None, fixed_norm=None).validate()


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"model": "mlp", "layer_norm": "pre"}, "model mlp has no part for layer_norm"),
        ({"embedding": "separate"}, "model transformer has no part for embedding"),
        ({"momentum": 0.5}, r"momentum \(--momentum\) applies only with --optimizer sgd or muon"),
        ({"grad_filter": "ma", "filter_alpha": 0.5}, "applies only with --grad-filter ema"),
        ({"filter_lambda": 3.0}, "applies only with --grad-filter ema or ma"),
    ],
)
def test_a_field_the_run_never_reads_is_refused_away_from_its_default(changes, words):
    with pytest.raises(UsageError, match=words):
        preset("small").replace(**changes).validate()


def test_a_field_written_in_every_config_keeps_its_value_where_unread():
    cfg = preset("small").replace(model="mlp", n_heads=3).validate()  # 64 % 3: unread
    assert cfg.n_heads == 3


def test_parts_hold_the_fields_the_run_reads():
    mlp = preset("small", model="mlp")
    assert set(mlp.part("model")) == {
        *("model", "d_model", "d_mlp", "n_layers", "activation", "embedding", "combine"),
        *("first_bias", "input_format"),
    }
    assert "n_heads" in preset("small").part("model")
    assert "momentum" not in preset("small").part("recipe")
    assert preset("small").replace(optimizer="sgd").part("recipe")["momentum"] is None
    assert foreign_fields("mlp") == {
        *("n_heads", "layer_norm", "attention_rate", "attention_rule"),
        *("positional", "biases"),
    }
    assert foreign_fields("transformer") == {"embedding", "combine", "first_bias"}


def test_run_names_use_each_fields_prefix():
    from grokinterp.sweep.spec import run_name

    chosen = {"train_frac": 0.3, "weight_decay": 1.0, "operation": "mul", "seed": 12}
    assert run_name(chosen) == "frac0.3-wd1-mul-seed12"
    assert (
        run_name({"lr": 1e-5, "grad_filter": "ema", "d_model": 64}) == "lr1e-05-filter-ema-dmodel64"
    )


# ---- the commands' flags ------------------------------------------------------------------------
IMPORT_FIELDS = {
    *("p", "train_frac", "seed", "data_seed", "operation", "group"),
    *("lr", "weight_decay", "beta1", "beta2", "adam_eps"),
}
"""The config fields `grokinterp import` takes: what a foreign file may not state."""


def commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_command_is_checked():
    assert {"train", "import", "analyze", "sweep", "forecast"} <= set(commands())


@pytest.mark.parametrize("command", sorted(commands()))
def test_each_command_takes_exactly_its_config_fields_with_the_schemas_help(command):
    parser = commands()[command]
    wanted = {"train": set(FIELDS), "import": IMPORT_FIELDS, "reproduce": {"epochs"}}.get(
        command, set()
    )
    taken = {action.dest: action for action in parser._actions if action.dest in FIELDS}
    assert set(taken) == wanted
    text = parser.format_help()
    for name, action in taken.items():
        field = FIELDS[name]
        assert action.option_strings == [field.flag]
        assert action.help.replace("%%", "%").startswith(field.help)
        assert re.search(rf"^\s+{re.escape(field.flag)}\b", text, re.MULTILINE), field.flag
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for field in FIELDS.values():  # no config field's flag defined by hand
        if field.name not in wanted:
            assert field.flag not in flags, (command, field.flag)
    swept = {action.dest for action in parser._actions if action.dest.endswith("_list")}
    assert swept == (
        {f"{f.name}_list" for f in FIELDS.values() if f.swept} if command == "train" else set()
    )


def test_train_lists_each_familys_model_flags():
    text = commands()["train"].format_help().split("models (--model NAME)")[1]
    families = re.split(r"^  (\w+) ", text, flags=re.MULTILINE)[1:]
    listed = dict(zip(families[::2], families[1::2], strict=True))
    assert set(listed) == set(FIELDS["model"].choices)
    for family, block in listed.items():
        flags = set(block.split())
        assert {"--d-model", "--d-mlp", "--n-layers"} <= flags
        assert not {FIELDS[name].flag for name in foreign_fields(family)} & flags
        if family == "transformer":
            assert {"--n-heads", "--layer-norm", "--attention-rate"} <= flags


def test_the_docs_field_tables_are_the_schemas():
    text = (REPO / "docs" / "config.md").read_text()
    begin = "<!-- fields: generated by scripts/config_docs.py -->\n\n"
    table = text.split(begin)[1].split("\n<!-- fields: end -->")[0]
    assert table == markdown_tables(FIELDS), "run: python scripts/config_docs.py"
    for field in FIELDS.values():
        assert f"| `{field.name}` | `{field.flag}` |" in table


# ---- what the fields name exists ----------------------------------------------------------------
def tiny(**changes) -> RunConfig:
    return preset("small").replace(p=7, d_model=8, n_heads=2, d_mlp=8, **changes).validate()


REFUSED_CHOICES = {("mlp", "init", "zhong")}
"""Choices a family refuses in `RunConfig.validate` (not implemented for it)."""


@pytest.mark.parametrize(
    "name, family",
    [
        ("activation", "transformer"),
        ("activation", "mlp"),
        ("layer_norm", "transformer"),
        ("attention_rule", "transformer"),
        ("positional", "transformer"),
        ("biases", "transformer"),
        ("embedding", "mlp"),
        ("combine", "mlp"),
        ("first_bias", "mlp"),
        ("init", "transformer"),
        ("init", "mlp"),
    ],
)
def test_every_model_choice_gives_a_model(name, family):
    from grokinterp.models import architecture

    for value in FIELDS[name].choices:
        changes = {"model": family, name: value}
        if name == "attention_rule":
            changes["attention_rate"] = 0.5
        if (family, name, value) in REFUSED_CHOICES:
            with pytest.raises(UsageError, match=f"{name} {value}"):
                tiny(**changes)
            continue
        model = architecture(tiny(**changes))
        params = model.init_params()
        a, b = torch.arange(7)[None], torch.arange(7).flip(0)[None]
        logits = model.logits({k: t[None] for k, t in params.items()}, a, b)
        assert logits.shape == (1, 1, 7, 7) or logits.shape == (1, 7, 7), (name, value)
        assert torch.isfinite(logits).all()


def test_every_family_choice_is_a_family():
    from grokinterp.models import FAMILIES

    assert set(FIELDS["model"].choices) == set(FAMILIES)


def test_every_recipe_choice_is_implemented():
    from grokinterp.training.recipe import Recipe
    from grokinterp.training.recipe.objectives import PER_PAIR
    from grokinterp.training.recipe.precision import PRECISIONS

    assert set(FIELDS["objective"].choices) == set(PER_PAIR)
    assert set(FIELDS["precision"].choices) == set(PRECISIONS)
    from grokinterp.models import architecture

    for name in ("optimizer", "grad_filter"):
        for value in FIELDS[name].choices:
            cfg = tiny(**{name: value})
            model = architecture(cfg)
            params = {k: t[None].clone() for k, t in model.init_params().items()}
            recipe = Recipe([cfg])
            state = recipe.initial_state(params)
            grads = {k: torch.ones_like(params[k]) for k in model.trained}
            before = {k: params[k].clone() for k in model.trained}
            lr, wd = torch.full((1,), 0.1), torch.zeros(1)
            recipe.update_(params, grads, state, 0, lr, wd)
            moved = [k for k in model.trained if not torch.equal(params[k], before[k])]
            assert moved, (name, value)


# ---- the one parameter count --------------------------------------------------------------------
def test_the_canonical_transformer_has_227313_parameters():
    """REFERENCE.md: 227,313 parameters. By hand, with d = 128, h = 4, d_head = 32, m = 512,
    p = 113: W_E (p + 1) d, W_pos 3 d, W_Q/K/V 3 h d d_head and b_Q/K/V 3 h d_head, W_O h d_head d
    and b_O d, W_in d m and b_in m, W_out m d and b_out d, W_U d p and b_U p."""
    from grokinterp.models import architecture

    d, h, dh, m, p = 128, 4, 32, 512, 113
    by_hand = (p + 1) * d + 3 * d + 3 * h * d * dh + 3 * h * dh + h * dh * d + d
    by_hand += d * m + m + m * d + d + d * p + p
    assert by_hand == 227_313
    assert architecture(preset("canonical")).n_parameters() == by_hand


def test_an_mlps_parameter_count_by_hand():
    """Chughtai et al.'s MLP on S4 (24 elements): two embeddings 24 x 256, W_in 512 x 128 (the
    concatenation), W_U 128 x 24; a shared, summed two-layer MLP: 24 x 64, 64 x 32, 32 x 32,
    32 x 24 (no biases)."""
    from grokinterp.models import architecture

    chughtai = preset("canonical", group="S4")
    assert architecture(chughtai).n_parameters() == 2 * 24 * 256 + 512 * 128 + 128 * 24
    summed = preset("small", group="S4").replace(
        embedding="shared", combine="sum", n_layers=2, d_model=64, d_mlp=32
    )
    assert architecture(summed).n_parameters() == 24 * 64 + 64 * 32 + 32 * 32 + 32 * 24


def test_a_sweep_spec_is_refused_for_a_recipe_the_model_cannot_take(tmp_path):
    """The muon_params names need the model: checked where the recipe is built, before a
    sweep's plan."""
    from grokinterp.sweep.spec import read_spec

    spec = tmp_path / "spec.toml"
    fixed = '[fixed]\np = 7\noptimizer = "muon"\nmuon_params = "W_nope"\n'
    spec.write_text(f"{fixed}[grid]\nseed = [0]\n[analysis]\nanalyze = false\nreport = false\n")
    with pytest.raises(UsageError, match="run seed0: muon_params: 'W_nope' is not a trained"):
        read_spec(spec)
