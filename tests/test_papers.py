"""`grokinterp reproduce`: the papers' presets against their code's values (typed by hand from
research/papers.md), Zhong et al.'s init against its closed form, the comparison rules on
hand-built results, and a tiny `--quick` reproduction of each paper end to end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from grokinterp.cli.main import main
from grokinterp.errors import UsageError
from grokinterp.models import architecture
from grokinterp.papers import PAPERS, paper_of, zhong2023
from grokinterp.papers.base import AGREES, Run, RunResult
from grokinterp.papers.runner import plan
from grokinterp.presets import PRESETS, preset

REPO = Path(__file__).resolve().parents[1]


# ---- presets ----------------------------------------------------------------------------------
def test_zhong2023_preset_is_their_code():
    """fjzzq2002/pizza code/train-main.py: C = 59, [a, b], frac 0.8 (int(0.8 * 3481) = 2784
    train pairs), d_model 128, 4 heads, d_mlp 512, AdamW lr 1e-3 betas (0.9, 0.98) wd 2,
    10 warm-up steps, full batch, 20,000 epochs."""
    cfg = preset("zhong2023").validate()
    assert (cfg.p, cfg.d_vocab, cfg.n_ctx, cfg.n_train) == (59, 59, 2, 2784)
    assert (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.n_layers) == (128, 4, 32, 512, 1)
    assert (cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2) == (1e-3, 2.0, 0.9, 0.98)
    assert (cfg.warmup_steps, cfg.epochs, cfg.batch_size) == (10, 20_000, None)
    assert (cfg.layer_norm, cfg.activation, cfg.attention_rule) == ("none", "relu", "zhong")
    assert cfg.init == "zhong"


def test_nanda2023_is_the_canonical_preset():
    assert preset("nanda2023") == preset("canonical").replace(preset="nanda2023")


def test_zhong_init_scales_only_W_in_to_one_over_sqrt_d_mlp():
    """Same seed, same draws: `zhong` equals `paper` except W_in, scaled by
    sqrt(d_model / d_mlp) (randn / sqrt(d_mlp) instead of randn / sqrt(d_model))."""
    cfg = preset("zhong2023")
    zhong = architecture(cfg).init_params()
    paper = architecture(cfg.replace(init="paper")).init_params()
    for name, value in zhong.items():
        if name.endswith("mlp.W_in"):
            torch.testing.assert_close(value, paper[name] * math.sqrt(128 / 512))
            assert abs(value.std().item() * math.sqrt(512) - 1) < 0.02  # 65,536 draws
        else:
            assert torch.equal(value, paper[name]), name
    assert abs(zhong["unembed.W_U"].std().item() * math.sqrt(59) - 1) < 0.05


def test_zhong_init_is_refused_for_an_mlp():
    with pytest.raises(UsageError, match="zhong"):
        preset("canonical", group="S4").replace(init="zhong").validate()


# ---- the comparison rules on hand-built results -----------------------------------------------
def _result(rate: float, seed: int, gs: float, di: float, acc: float = 1.0) -> RunResult:
    values = {"attention_rate": rate, "seed": seed}
    result = RunResult(Run(f"r{rate}-s{seed}", preset("zhong2023"), values), None, None)
    result.__dict__["measures"] = pd.DataFrame(
        {
            "epoch": [100],
            "test_acc": [acc],
            "gradient_symmetricity": [gs],
            "distance_irrelevance": [di],
        }  # fmt: skip
    )
    return result


def _verdicts(results) -> dict[str, str]:
    experiment = zhong2023.experiment(False, None)
    return {row.claim: row.verdict for row in zhong2023.compare(experiment, results).rows}


def test_zhong_rule_agrees_inside_the_published_range_and_says_why_not_outside():
    # bins by hand: rate 0 in [0, 0.05] (GS 10-90% 0.991-0.995), rate 1 in (0.95, 1] (DI
    # 0.768-0.943)
    results = [_result(0.0, 0, 0.993, 0.3), _result(0.0, 1, 0.97, 0.4), _result(1.0, 0, 0.4, 0.9)]
    verdicts = _verdicts(results)
    assert verdicts["distance irrelevance, attention rate in [0, 0.05]"] == AGREES
    assert (
        "seed 1: 0.970 outside 0.991-0.995"
        in (verdicts["gradient symmetricity, attention rate in [0, 0.05]"])
    )
    assert verdicts["distance irrelevance, attention rate in (0.95, 1]"] == AGREES
    assert verdicts["gradient symmetricity falls from attention rate 0 to 1"] == AGREES


def test_zhong_rule_names_a_run_that_did_not_generalise():
    verdicts = _verdicts([_result(0.0, 0, 0.993, 0.3, acc=0.4), _result(1.0, 0, 0.99, 0.2)])
    assert (
        "seed 0 has test accuracy 0.400"
        in verdicts["gradient symmetricity, attention rate in [0, 0.05]"]
    )
    assert verdicts["distance irrelevance rises from attention rate 0 to 1"] != AGREES


@pytest.mark.parametrize("rate, index", [(0.0, 0), (0.05, 0), (0.2, 1), (0.6, 3), (1.0, 6)])
def test_each_rate_falls_in_its_published_bin(rate, index):
    assert zhong2023.bin_of(rate) == index


# ---- the command ------------------------------------------------------------------------------
def test_an_unknown_paper_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    assert main(["reproduce", "nope2099", "--root", str(tmp_path), "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown paper 'nope2099'" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_budget_cut_is_applied_and_stated(tmp_path):
    _, experiment, _ = plan("zhong2023", tmp_path, seeds=[3], epochs=1000)
    assert {run.cfg.epochs for run in experiment.runs} == {1000}
    assert [run.cfg.seed for run in experiment.runs] == [3] * 6
    assert "budget cut to 1,000 epochs (the paper's 20,000)" in experiment.cut


def test_a_run_of_another_config_on_disk_is_refused(tmp_path):
    other = tmp_path / "checkpoints" / "papers" / "zhong2023-quick" / "rate0-seed0"
    other.mkdir(parents=True)
    (other / "config.json").write_text(preset("small").to_json())
    with pytest.raises(UsageError, match="another config"):
        plan("zhong2023", tmp_path, quick=True)


def _read(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns) == ["claim", "published", "source", "measured", "verdict"]
    assert table["verdict"].notna().all() and table["source"].notna().all()
    page = (out / "page.html").read_text()
    assert "grokinterp-figure" in page and "<script src=" not in page  # self-contained
    return table


@pytest.fixture(scope="module")
def zhong_quick(tmp_path_factory):
    root = tmp_path_factory.mktemp("zhong")
    assert main(["reproduce", "zhong2023", "--quick", "--root", str(root), "--quiet"]) == 0
    return root


def test_zhong_quick_writes_a_table_of_both_rates(zhong_quick):
    out = zhong_quick / "analyses" / "papers" / "zhong2023-quick"
    table = _read(out)
    claims = table.set_index("claim")
    gs = claims.loc["gradient symmetricity, attention rate in [0, 0.05]"]
    measures = pd.read_csv(out / "runs" / "rate0-seed0" / "measures.csv")
    assert f"{measures['gradient_symmetricity'].iloc[-1]:.3f}" in gs["measured"]
    assert len(table) == 2 * 2 + 2  # two rates x two measures, two trends
    assert "6 epochs" in (out / "table.md").read_text()


def test_a_written_result_is_replaced_only_when_asked(zhong_quick, capsys):
    out = zhong_quick / "analyses" / "papers" / "zhong2023-quick"
    before = (out / "table.csv").read_bytes()
    args = ["reproduce", "zhong2023", "--quick", "--root", str(zhong_quick), "--quiet"]
    assert main(args) == 2
    assert "--replace" in capsys.readouterr().err
    assert (out / "table.csv").read_bytes() == before
    assert main([*args, "--replace"]) == 0  # the runs are reused, the result written again
    assert (out / "table.csv").read_bytes() == before


def test_nanda_quick_trains_and_compares(tmp_path):
    assert main(["reproduce", "nanda2023", "--quick", "--root", str(tmp_path), "--quiet"]) == 0
    table = _read(tmp_path / "analyses" / "papers" / "nanda2023-quick")
    assert len(table) == len(paper_of("nanda2023").published)


def test_nanda_full_reads_the_shipped_reference(tmp_path):
    shipped = REPO / "analyses" / "reference-canonical"
    shutil.copytree(shipped, tmp_path / "analyses" / "reference-canonical")
    assert main(["reproduce", "nanda2023", "--root", str(tmp_path), "--quiet"]) == 0
    assert not (tmp_path / "checkpoints").exists()  # nothing trained
    table = _read(tmp_path / "analyses" / "papers" / "nanda2023").set_index("claim")
    summary = json.loads((shipped / "summary.json").read_text())
    keys = ", ".join(str(k) for k in summary["key_components"])
    assert table.loc["key frequencies", "measured"] == keys
    assert table.loc["excluded loss rises in circuit formation", "verdict"] == AGREES
    assert table.loc["memorisation end (epoch)", "measured"] == (
        f"{summary['phases']['memorization_end']:,}"
    )


@pytest.mark.parametrize("name", ["power2022", "chughtai2023", "devinterp-grokking"])
def test_the_other_papers_quick(tmp_path, name):
    """Enabled once the paper's preset exists (added by other branches)."""
    wanted = paper_of(name).preset
    if wanted not in PRESETS:
        pytest.skip(f"preset {wanted!r} is not in grokinterp.presets yet")
    assert main(["reproduce", name, "--quick", "--root", str(tmp_path), "--quiet"]) == 0
    table = _read(tmp_path / "analyses" / "papers" / f"{name}-quick")
    assert len(table) > 0


def test_every_paper_names_its_sources():
    for name in PAPERS:
        paper = paper_of(name)
        assert paper.published and all(row.source and row.value for row in paper.published)


# ---- Chughtai et al.'s measures on hand-built logits and embeddings ---------------------------
def _s5():
    from grokinterp.papers import chughtai2023
    from grokinterp.tasks.groups import build_group, group_irreps

    group, irreps = build_group("S5"), group_irreps("S5")
    sign = next(i for i in irreps if i.name == "sign").character
    return chughtai2023, group, irreps, chughtai2023.transposition_of(group.table, sign)


def test_their_names_cover_the_seven_irreps_of_s5():
    chughtai2023, _, irreps, transposition = _s5()
    names = sorted(chughtai2023.their_name(i, transposition) for i in irreps)
    assert names == sorted(
        ["trivial", "sign", "standard", "standard_sign", "s5_5d_a", "s5_5d_b", "s5_6d"]
    )


def test_logits_made_of_one_character_are_similar_to_it_alone():
    """logits(a, b, c) = chi_4a(a b c^-1): similarity 1 with 4a; with the other irreps 0 by
    the orthogonality of characters (computed over all a, b, c by hand here)."""
    chughtai2023, group, irreps, _ = _s5()
    table, inverse = group.table, group.inverse
    standard = next(i for i in irreps if i.name == "4a")
    logits = standard.character[table[table[:, :, None], inverse[None, None, :]]]
    for irrep in irreps:
        if irrep.name == "trivial":
            continue
        sim = chughtai2023.logit_similarity(logits, irrep.character, table, inverse)
        assert sim == pytest.approx(1.0 if irrep is standard else 0.0, abs=1e-9), irrep.name


def test_an_embedding_in_one_irreps_span_has_all_its_share_there():
    from grokinterp.bases.irreps import basis_rows

    chughtai2023, _, irreps, _ = _s5()
    rows = {i.name: basis_rows(i)[0] for i in irreps}
    embed = rows["5a"].T @ torch.randn(len(rows["5a"]), 7, dtype=torch.float64).numpy()
    assert chughtai2023.share_of_span(embed, rows["5a"]) == pytest.approx(1.0)
    assert chughtai2023.share_of_span(embed, rows["4a"]) == pytest.approx(0.0, abs=1e-12)
