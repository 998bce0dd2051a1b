"""Forecast a run's grokking epoch (the first epoch with test accuracy >= 99%) from what it
showed up to an epoch, with an interval, or say that no grokking is predicted within its budget.

Two forecasters, both fitted on calibration runs (`fit_constants`) and shipped as constants in
`grokinterp/data/forecast_constants.json`:

- `norm_law`: the weight-norm delay law. Weight decay shrinks the norm geometrically (AdamW:
  theta <- (1 - lr wd) theta - lr update), so the time for the norm to fall from its value at the
  end of memorisation to the generalising solution's is
      T_grok = T_mem + c log(||theta_mem||^2 / ||theta*||^2) / (lr wd),
  with c (1/2 for pure decay) and log ||theta*||^2 fitted by a straight line
  (scipy.stats.linregress) of (T_grok - T_mem) lr wd on log ||theta_mem||^2. ||theta||^2 is the
  sum of squared weights at the first checkpoint at or after T_mem.
- `indicators`: ordinary least squares (scipy.linalg.lstsq) of log T_grok on the indicators at
  the last seen checkpoint (FEATURES), fitted on every checkpoint between memorisation and
  grokking of the calibration runs that grokked; gated by a logistic regression (L2 penalty
  GATE_L2, fitted with scipy.optimize.minimize) of "groks within the calibration budget" on the
  same features at every checkpoint after memorisation of every calibration run that memorised
  (until it groks): "no grokking predicted" when its probability is below 1/2.

Both intervals are the 10% and 90% quantiles of the forecaster's calibration residuals (an 80%
interval). "No grokking predicted" when the forecast lies past the run's configured epochs (or,
for `indicators`, when its gate says so). A forecast epoch at or before the last epoch seen,
which the run reached without grokking, is "overdue": the line says by how many epochs and
gives no forecast. No line prints an epoch the run has ruled out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from grokinterp.errors import UsageError

GROK_ACC = 0.99
"""Test accuracy that defines the grokking epoch."""
MEMORISED_ACC = 0.99
"""Train accuracy that defines the end of memorisation T_mem."""
MIN_CHECKPOINTS = 3
"""Checkpoints a forecast needs at or before its epoch."""
INTERVAL = (0.1, 0.9)
GATE_L2 = 1.0
"""L2 penalty on the gate's standardised coefficients (keeps them finite when the calibration
points are separable)."""
CONSTANTS = "forecast_constants.json"
FEATURES = (
    "log_lr_wd",
    "log_seen",
    "log_t_mem",
    "log_norm_mem",
    "log_norm_ratio",
    "spectral_entropy",
    "lar_W_L",
    "log_fiedler",
    "head_similarity",
)
"""The indicators forecaster's inputs at the last seen checkpoint: log(lr wd), log of that
epoch, log T_mem, log ||theta_mem||^2, log(||theta||^2 / ||theta_mem||^2), spectral entropy,
log-alignment ratio, log Fiedler value and head similarity (0 without attention)."""


def first_epoch(metrics: pd.DataFrame, column: str, at_least: float) -> int | None:
    """The first epoch (index of `metrics`) whose `column` is >= `at_least`, else None."""
    hit = metrics.index[metrics[column].to_numpy() >= at_least]
    return int(hit[0]) if len(hit) else None


def grok_epoch(metrics: pd.DataFrame) -> int | None:
    return first_epoch(metrics, "test_acc", GROK_ACC)


def memorisation_epoch(metrics: pd.DataFrame) -> int | None:
    return first_epoch(metrics, "train_acc", MEMORISED_ACC)


@dataclass(frozen=True)
class Observed:
    """What a forecaster sees of a run up to epoch `seen`: its lr x weight decay, T_mem and the
    indicator table's rows at or before `seen`
    (`grokinterp.prediction.indicators.table.run_indicators`)."""

    lr_wd: float
    t_mem: int
    seen: int
    table: pd.DataFrame

    @property
    def norm_mem(self) -> float:
        """Sum of squared weights at the first checkpoint at or after T_mem."""
        after = self.table[self.table["epoch"] >= self.t_mem]
        return float(after["weight_norm"].iloc[0])


def settled(metrics: pd.DataFrame, epochs: int) -> str | None:
    """What a run's `metrics` (up to the last epoch seen) already settle, so that there is
    nothing to forecast: that it grokked, at which epoch, or that it finished its configured
    `epochs` without memorising; None when neither."""
    grokked = grok_epoch(metrics)
    if grokked is not None:
        return f"already grokked: test accuracy first reached {GROK_ACC:.0%} at epoch {grokked:,}"
    if int(metrics.index[-1]) >= epochs and memorisation_epoch(metrics) is None:
        return (
            f"never memorised in its {epochs:,} epochs (train accuracy below "
            f"{MEMORISED_ACC:.0%} throughout); no forecast"
        )
    return None


def check_checkpoints(count: int, seen: int) -> None:
    """UsageError when `count` checkpoints at or before epoch `seen` are too few to forecast."""
    if count < MIN_CHECKPOINTS:
        raise UsageError(
            f"too few checkpoints: {count} at or before epoch {seen}, a forecast needs "
            f"{MIN_CHECKPOINTS}"
        )


def observe(lr_wd: float, metrics: pd.DataFrame, table: pd.DataFrame, seen: int) -> Observed:
    """The Observed of a run at `seen` (the metrics and indicator rows after it are dropped).
    UsageError when fewer than MIN_CHECKPOINTS checkpoints lie at or before `seen`, or when the
    run has not memorised by then (or has no checkpoint after memorising)."""
    rows = table[table["epoch"] <= seen].reset_index(drop=True)
    check_checkpoints(len(rows), seen)
    t_mem = memorisation_epoch(metrics.loc[:seen])
    if t_mem is None or rows["epoch"].iloc[-1] < t_mem:
        raise UsageError(
            f"too early: no checkpoint after memorisation (train accuracy >= {MEMORISED_ACC:.0%})"
            f" at or before epoch {seen}; the forecasters start from the end of memorisation"
        )
    return Observed(lr_wd, t_mem, seen, rows)


def features(obs: Observed) -> np.ndarray:
    """FEATURES of an Observed, float64 [len(FEATURES)]."""
    last = obs.table.iloc[-1]
    norm_mem = obs.norm_mem
    values = {
        "log_lr_wd": np.log(obs.lr_wd),
        "log_seen": np.log(max(obs.seen, 1)),
        "log_t_mem": np.log(max(obs.t_mem, 1)),
        "log_norm_mem": np.log(norm_mem),
        "log_norm_ratio": np.log(last["weight_norm"] / norm_mem),
        "spectral_entropy": last["spectral_entropy"],
        "lar_W_L": last["lar_W_L"],
        "log_fiedler": np.log(max(last["fiedler"], 1e-12)),
        "head_similarity": last.get("head_similarity", 0.0),
    }
    return np.array([values[name] for name in FEATURES], dtype=np.float64)


def probability(p: float) -> str:
    """`p` to two decimals, on the side of 1/2 (and of 0 and 1) that `p` lies: 0.4999 reads
    "< 0.50", never "0.50", so that it agrees with the verdict `p >= 0.5`."""
    text = f"{p:.2f}"
    if p < 0.5 and text == "0.50":
        return "< 0.50"
    if p > 0 and text == "0.00":
        return "< 0.01"
    if p < 1 and text == "1.00":
        return "> 0.99"
    return text


@dataclass(frozen=True)
class Forecast:
    """A forecaster's answer for a run seen up to epoch `seen` without grokking: the predicted
    grokking epoch with its 80% interval (as the forecaster computes them, possibly at or before
    `seen`), and whether it lies within the run's budget of `horizon` epochs."""

    forecaster: str
    epoch: float
    low: float
    high: float
    horizon: int
    seen: int
    p_grok: float | None = None
    """The gate's probability of grokking within the budget (None: no gate)."""

    @property
    def overdue(self) -> bool:
        """The forecast epoch (to the epoch, as printed) is at or before `seen`: the run has
        already contradicted it."""
        return _whole(self.epoch) <= self.seen

    @property
    def groks(self) -> bool:
        """Grokking within the budget is predicted: the gate (if any) says so and the forecast
        epoch, or `seen` when it is overdue (grokking at once), lies within the budget."""
        gate = self.p_grok is None or self.p_grok >= 0.5
        return bool(gate and max(self.epoch, self.seen) <= self.horizon)

    def _interval(self) -> str:
        """The 80% interval, without the epochs the run has ruled out (at or before `seen`)."""
        low, high = _whole(self.low), _whole(self.high)
        if low > self.seen:
            return f"80% interval {low:,} to {high:,}"
        if high > self.seen:
            return f"80% interval up to {high:,}, its low end passed"
        return f"80% interval passed too, its high end {self.seen - high:,} epochs ago"

    def line(self) -> str:
        """One line that prints no epoch the run has ruled out: the forecast epoch, or how
        many epochs it is overdue (no forecast), or "no grokking predicted"."""
        where = f"{self.forecaster:<11}"
        gate = "" if self.p_grok is None else f", P(grok) {probability(self.p_grok)}"
        if self.overdue:
            late = self.seen - _whole(self.epoch)
            text = f"overdue by {late:,} epochs; {self._interval()}"
        else:
            text = f"forecast epoch {_whole(self.epoch):,}, {self._interval()}"
        if (self.p_grok is not None and self.p_grok < 0.5) or not (self.groks or self.overdue):
            budget = f"no grokking predicted within the run's {self.horizon:,} epochs"
            return f"{where} {budget} ({text}{gate})"
        if self.overdue:
            return f"{where} {text}; no forecast{gate}"
        return f"{where} grokking at epoch {_whole(self.epoch):,} ({self._interval()}){gate}"


def _whole(epoch: float) -> int | float:
    """An epoch rounded to a whole one (inf stays inf)."""
    return round(float(epoch)) if math.isfinite(epoch) else float(epoch)


def norm_law(obs: Observed, constants: dict, horizon: int) -> Forecast:
    """The weight-norm delay law's forecast (module docstring); a negative delay (the norm
    already below the target at memorisation) counts as none."""
    law = constants["norm_law"]
    y = law["c"] * (np.log(obs.norm_mem) - law["log_norm_star"])
    epochs = [
        obs.t_mem + max(y + r, 0.0) / obs.lr_wd
        for r in (0.0, law["residual_low"], law["residual_high"])
    ]
    return Forecast("norm law", *epochs, horizon, obs.seen)


def indicator_model(obs: Observed, constants: dict, horizon: int) -> Forecast:
    """The indicators forecaster's forecast (module docstring)."""
    from scipy import special

    model = constants["indicators"]
    x = (features(obs) - np.array(model["mean"])) / np.array(model["scale"])
    log_epoch = float(model["intercept"] + x @ np.array(model["coef"]))
    low, high = (np.exp(log_epoch + model[k]) for k in ("residual_low", "residual_high"))
    gate = constants["gate"]
    p_grok = float(special.expit(gate["intercept"] + x @ np.array(gate["coef"])))
    return Forecast("indicators", np.exp(log_epoch), low, high, horizon, obs.seen, p_grok)


FORECASTERS = {"norm_law": norm_law, "indicators": indicator_model}


def load_constants() -> dict:
    """The shipped constants (UsageError when the package lacks them)."""
    try:
        text = resources.files("grokinterp").joinpath("data", CONSTANTS).read_text()
    except OSError:
        raise UsageError(
            f"grokinterp/data/{CONSTANTS} is missing: fit it with "
            "scripts/predict_study.py --write-constants"
        ) from None
    return json.loads(text)


def fit_norm_law(
    t_mem: np.ndarray, norm_mem: np.ndarray, lr_wd: np.ndarray, t_grok: np.ndarray
) -> dict:
    """The norm law's constants (module docstring) from grokking runs, one entry per run of
    each float64 [runs] array: T_mem, ||theta_mem||^2, lr x weight decay and T_grok. c and
    log ||theta*||^2 come from the straight line (scipy.stats.linregress, free intercept) of
    (T_grok - T_mem) lr wd on log ||theta_mem||^2; the residual quantiles give the 80% interval;
    r_squared is the line's. ValueError with fewer than 2 runs."""
    from scipy import stats

    if len(t_mem) < 2:
        raise ValueError(f"the norm law needs 2 grokking runs, got {len(t_mem)}")
    x = np.log(norm_mem)
    y = (t_grok - t_mem) * lr_wd
    line = stats.linregress(x, y)
    residuals = y - (line.intercept + line.slope * x)
    c = float(line.slope)
    return {
        "c": c,
        "log_norm_star": float(-line.intercept / c),
        "residual_low": float(np.quantile(residuals, INTERVAL[0])),
        "residual_high": float(np.quantile(residuals, INTERVAL[1])),
        "r_squared": float(line.rvalue**2),
        "n_runs": len(x),
    }


def fit_constants(calibration: list[tuple[Observed, int | None]], source: str) -> dict:
    """Fit both forecasters on calibration data: for each calibration run that memorised, its
    Observed at every checkpoint from memorisation until it groks (at least one per run, the
    first at memorisation), with its grokking epoch (None: it never groks within the budget).
    The norm law and the regression take the grokking runs (the norm law one point per run: its
    T_mem and ||theta_mem||^2 do not depend on the epoch seen), the gate every point.
    ValueError with fewer than 2 grokking runs."""
    from scipy import linalg, optimize, special

    per_run = {}
    for obs, t_grok in calibration:
        if t_grok is not None:
            per_run.setdefault((obs.t_mem, obs.norm_mem, obs.lr_wd), t_grok)
    if len(per_run) < 2:
        raise ValueError(f"the forecasters need 2 grokking calibration runs, got {len(per_run)}")
    norm = fit_norm_law(*np.array([(*k, t) for k, t in per_run.items()], dtype=np.float64).T)
    X = np.stack([features(obs) for obs, _ in calibration])
    groks = np.array([t is not None for _, t in calibration])
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = np.column_stack([np.ones(len(X)), (X - mean) / scale])
    target = np.log([t for _, t in calibration if t is not None])
    solution, *_ = linalg.lstsq(Z[groks], target)
    fitted = target - Z[groks] @ solution
    model = {
        "features": list(FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "intercept": float(solution[0]),
        "coef": solution[1:].tolist(),
        "residual_low": float(np.quantile(fitted, INTERVAL[0])),
        "residual_high": float(np.quantile(fitted, INTERVAL[1])),
        "n_points": int(groks.sum()),
    }
    penalty = np.r_[0.0, np.full(Z.shape[1] - 1, GATE_L2)]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = Z @ w
        value = np.sum(np.logaddexp(0.0, z) - groks * z) + 0.5 * np.sum(penalty * w**2)
        return float(value), Z.T @ (special.expit(z) - groks) + penalty * w

    fit = optimize.minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B")
    gate = {"intercept": float(fit.x[0]), "coef": fit.x[1:].tolist(), "l2": GATE_L2}
    gate |= {"n_points": len(X), "n_grok_points": int(groks.sum()), "converged": bool(fit.success)}
    return {
        "source": source,
        "grok_acc": GROK_ACC,
        "norm_law": norm,
        "indicators": model,
        "gate": gate,
    }
