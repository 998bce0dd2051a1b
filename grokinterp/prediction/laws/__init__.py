"""The 2026 grokking delay laws as forecasters: each predicts a run's grokking epoch (the first
epoch with test accuracy >= 99%) from what the run shows at the end of memorisation (train
accuracy >= 99%), with constants fitted on training runs or published by its paper.

    norm_separation.py  T_grok - T_mem = c log(V_mem / V_post) / (eta lambda)    (2603.13331)
    first_passage.py    T_grok - T_mem = log(V_mem / V*) / (2 kappa eta lambda)   (2605.18845)
    pinned_norm.py      T_grok = A exp(alpha rho), rho = fixed norm / W_c         (2606.13753)

V = ||theta||^2 is the sum of squared entries of every parameter of a checkpoint (float64; the
indicator table's `weight_norm`), read at the checkpoints from the first one at or after T_mem.
Each law module has `NAME`, `PUBLISHED` (the paper's complete constants, or None),
`needs(facts)` (UsageError when the run lacks an input the law needs), optionally `check(facts,
constants)` (UsageError when the constants do not cover the run beyond its optimiser),
`fit(runs) -> dict` (scipy; ValueError when the runs cannot identify the constants) and
`predict(facts, constants) -> float` (the grokking epoch).

Constants are a dict: the law's parameters, `optimizers` (those of the runs they were fitted on,
or that the paper's constants hold for: a run trained with another optimiser is refused),
`log_ratio_low` / `log_ratio_high` (10% and 90% quantiles of log(predicted / actual delay) on the
fitting runs: the 80% interval) and `source`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grokinterp.errors import UsageError


@dataclass(frozen=True)
class RunFacts:
    """What a law sees of a run up to epoch `seen`: its optimiser, lr (eta), weight decay
    (lambda), modulus p, the held total L2 norm (`fixed_norm`, None when free), its budget of
    `epochs`, T_mem, and V = ||theta||^2 (float64) at the checkpoints `norm_epochs` (int64, from
    the first at or after T_mem up to `seen`). `t_grok` and `v_grok` (V at the first checkpoint
    at or after T_grok) are known only for fitting runs (None otherwise)."""

    name: str
    optimizer: str
    lr: float
    weight_decay: float
    p: int
    fixed_norm: float | None
    epochs: int
    t_mem: int
    seen: int
    norm_epochs: np.ndarray = field(repr=False)
    norms: np.ndarray = field(repr=False)
    t_grok: int | None = None
    v_grok: float | None = None

    @property
    def v_mem(self) -> float:
        """V at the first checkpoint at or after T_mem."""
        return float(self.norms[0])

    @property
    def eta_lambda(self) -> float:
        """lr x weight decay: the per-step contraction of decoupled weight decay."""
        return self.lr * self.weight_decay


def law_modules() -> dict:
    """{law name: module}, the laws `grokinterp forecast --law` accepts."""
    from grokinterp.prediction.laws import first_passage, norm_separation, pinned_norm

    return {m.NAME: m for m in (norm_separation, first_passage, pinned_norm)}


def law(name: str):
    """The law module called `name` (UsageError naming the laws when there is none)."""
    laws = law_modules()
    if name not in laws:
        raise UsageError(f"unknown law {name!r}; choose one of {', '.join(laws)}")
    return laws[name]


def check_optimizer(facts: RunFacts, constants: dict, name: str) -> None:
    """UsageError when the run's optimiser is not one the constants hold for."""
    held = constants.get("optimizers", [])
    if facts.optimizer not in held:
        raise UsageError(
            f"the {name} constants hold for {'/'.join(held) or 'no'} runs "
            f"({constants.get('source', '')}); {facts.name} was trained with {facts.optimizer}"
        )


def forecast(facts: RunFacts, module, constants: dict):
    """The law's `grokinterp.prediction.forecast.Forecast` for the run: the predicted epoch
    T_mem + delay, with the delay scaled by exp(log_ratio) for the 80% interval (no interval
    when the constants carry none)."""
    from grokinterp.prediction.forecast import Forecast

    module.needs(facts)
    check_optimizer(facts, constants, module.NAME)
    if hasattr(module, "check"):
        module.check(facts, constants)
    epoch = module.predict(facts, constants)
    delay = max(epoch - facts.t_mem, 0.0)
    low, high = (
        facts.t_mem + delay * np.exp(-constants.get(key, 0.0))
        for key in ("log_ratio_high", "log_ratio_low")
    )
    return Forecast(module.NAME, facts.t_mem + delay, low, high, facts.epochs, facts.seen)


def run_facts(run, upto: int | None = None, fitting: bool = False) -> RunFacts:
    """The RunFacts of a `grokinterp.storage.run.Run` seen up to epoch `upto` (default: all it
    has), with V at its first checkpoint at or after T_mem; with `fitting`, V at every checkpoint
    from there to the first at or after its grokking epoch, with t_grok and v_grok. UsageError
    when it has not memorised by then, or has no checkpoint after memorising (or, fitting, never
    groks or has no checkpoint after)."""
    from grokinterp.prediction import forecast as fc

    metrics = run.metrics()
    if upto is not None:
        metrics = metrics.loc[:upto]
    t_mem = fc.memorisation_epoch(metrics)
    t_grok = fc.grok_epoch(metrics) if fitting else None
    if t_mem is None:
        raise UsageError(
            f"{run.name}: not memorised (train accuracy >= 99%) by epoch "
            f"{int(metrics.index[-1]) if len(metrics) else 0}"
        )
    if fitting and t_grok is None:
        raise UsageError(f"{run.name}: never groks, so it cannot fit a delay law")
    last = int(metrics.index[-1])
    epochs = [e for e in run.epochs if e >= t_mem and (fitting or e <= last)]
    if not epochs or (fitting and epochs[-1] < t_grok):
        raise UsageError(f"{run.name}: no checkpoint after memorisation at epoch {t_mem:,}")
    if fitting:
        epochs = [e for e in epochs if e <= min(x for x in epochs if x >= t_grok)]
    else:
        epochs = epochs[:1]
    names = list(run.architecture.param_shapes())
    norms = np.array([_sum_of_squares(run.state_dict(e), names) for e in epochs])
    cfg = run.config
    return RunFacts(
        name=run.name,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        p=cfg.p,
        fixed_norm=cfg.fixed_norm,
        epochs=cfg.epochs,
        t_mem=t_mem,
        seen=t_grok if fitting else last,
        norm_epochs=np.array(epochs, dtype=np.int64),
        norms=norms,
        t_grok=t_grok,
        v_grok=float(norms[-1]) if fitting else None,
    )


def _sum_of_squares(state, names: list[str]) -> float:
    """||theta||^2 of a state dict: the squared entries of its parameters `names` (every weight
    and bias, trained or not; buffers such as attention masks left out), summed in float64."""
    return float(sum(state[n].double().pow(2).sum() for n in names))


def load_constants(path: Path | None, module) -> dict:
    """The constants in the JSON file `path` (written by `scripts/fit_laws.py`), or the law's
    published ones when `path` is None. UsageError when the file is unreadable, is for another
    law, or the law publishes no complete set."""
    if path is None:
        if module.PUBLISHED is None:
            raise UsageError(
                f"the {module.NAME} law has no published constants: fit them on trained runs "
                "(scripts/fit_laws.py) and pass --constants FILE"
            )
        return module.PUBLISHED
    try:
        constants = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read constants {path}: {exc}") from None
    if not isinstance(constants, dict) or constants.get("law") != module.NAME:
        found = constants.get("law") if isinstance(constants, dict) else None
        raise UsageError(f"{path} holds constants of the {found!r} law, not {module.NAME!r}")
    return constants
