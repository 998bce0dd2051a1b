import json

import pytest

from grokinterp.config import RunConfig, is_prime
from grokinterp.errors import UsageError
from grokinterp.presets import PRESETS, preset


def test_canonical_preset_is_the_paper_run():
    # Values typed from Nanda et al. (2023) as restated in shared/REFERENCE.md.
    cfg = preset("canonical")
    assert (cfg.p, cfg.train_frac, cfg.epochs, cfg.save_every) == (113, 0.3, 40_000, 100)
    assert (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == (128, 4, 32, 512)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx, cfg.eq_token) == (114, 113, 3, 113)
    assert (cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2, cfg.warmup_steps) == (
        1e-3,
        1.0,
        0.9,
        0.98,
        10,
    )
    assert cfg.init == "paper"
    assert cfg.n_train == 3830 and cfg.n_pairs - cfg.n_train == 8939


def test_derived_values_follow_p():
    cfg = preset("canonical").replace(p=97)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.eq_token, cfg.n_pairs) == (98, 97, 97, 97 * 97)


def test_save_epochs_include_first_and_last():
    cfg = preset("small").replace(epochs=105, save_every=50)
    assert cfg.save_epochs == [0, 50, 100, 105]


def test_json_round_trip():
    for cfg in PRESETS.values():
        assert RunConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    "change, words",
    [
        ({"p": 100}, "prime"),
        ({"p": 2}, "prime"),
        ({"train_frac": 0.0}, r"train_frac must lie in \(0, 1\)"),
        ({"train_frac": 1.0}, r"train_frac must lie in \(0, 1\)"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -5}, "epochs"),
        ({"n_heads": 3}, "divisible"),
        ({"init": "xavier"}, "init"),
    ],
)
def test_bad_values_are_named(change, words):
    with pytest.raises(UsageError, match=words):
        preset("small").replace(**change).validate()


def test_from_json_rejects_unknown_fields():
    data = json.loads(preset("small").to_json())
    data["colour"] = "blue"
    with pytest.raises(UsageError, match="colour"):
        RunConfig.from_dict(data)


def test_is_prime_against_trial_division():
    primes = [n for n in range(200) if n > 1 and all(n % d for d in range(2, n))]
    assert [n for n in range(200) if is_prime(n)] == primes
