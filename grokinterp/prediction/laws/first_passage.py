"""The first-passage law (Truong, Truong, Luu and Phan 2026, "First-Passage Prediction of
Grokking Delay: A Calibrated Law under AdamW with Causal Validation", arXiv 2605.18845,
abstract and section 5; its repository ClevixLab/grokking-first-passage):

    T_grok - T_mem = log(V_mem / V*) / (2 kappa eta lambda),   V_t = ||theta_t||^2,

the time for V_t, contracting as V_mem exp(-2 kappa eta lambda (t - T_mem)), to fall to the
architecture-dependent threshold V*; kappa (kappa_LL) absorbs AdamW's correction to the clean-SGD
rate 2 eta lambda. The paper calibrates (kappa, V*) on one cell (p = 97, eta = 1e-3, lambda = 1,
addition, a one-layer transformer, AdamW): kappa 0.252, V* 2501 (`PUBLISHED`), and reports MAPE
17.7% on 26 held-out runs (41x range of delays), 18.0% for MLPs (N = 34), 23.3% across tasks.

Fit (`fit`), as the paper's per-trajectory fits: each run's kappa is minus the slope of log V_t
on t over its checkpoints from T_mem to T_grok (scipy.stats.linregress) over 2 eta lambda, and
kappa the median of those over the runs with 2 such checkpoints or more; log V* is the mean of
log V at the first checkpoint at or after T_grok. `PUBLISHED` holds for AdamW runs of the
paper's one-layer transformer only (V* is architecture-dependent: another width or depth needs
its own fit)."""

from __future__ import annotations

import numpy as np

from grokinterp.errors import UsageError
from grokinterp.prediction.laws.interval import with_interval

NAME = "first-passage"
SOURCE = "Truong et al. 2026, arXiv 2605.18845"
PUBLISHED = {
    "law": NAME,
    "source": f"{SOURCE}, calibration cell p=97 lr=1e-3 wd=1 (1-layer transformer, AdamW)",
    "kappa": 0.252,
    "log_v_star": float(np.log(2501.0)),
    "optimizers": ["adamw"],
}


def delay(v_mem: float, log_v_star: float, eta_lambda: float, kappa: float) -> float:
    """log(V_mem / V*) / (2 kappa eta lambda), in epochs (steps of one full batch)."""
    return (np.log(v_mem) - log_v_star) / (2.0 * kappa * eta_lambda)


def needs(facts) -> None:
    """UsageError when the run has no weight decay (nothing contracts the norm)."""
    if facts.eta_lambda <= 0:
        raise UsageError(f"{facts.name}: the {NAME} law needs weight decay (lr x wd > 0)")


def trajectory_kappa(facts) -> float:
    """-slope(log V_t on t) / (2 eta lambda) over the run's checkpoints (at least 2)."""
    from scipy import stats

    line = stats.linregress(facts.norm_epochs.astype(np.float64), np.log(facts.norms))
    return float(-line.slope / (2.0 * facts.eta_lambda))


def fit(runs: list) -> dict:
    """kappa and log V* (module docstring) from runs that grok (RunFacts up to T_grok, with
    t_grok and v_grok). ValueError with fewer than 2 runs, or none with 2 checkpoints from
    T_mem to T_grok."""
    if len(runs) < 2:
        raise ValueError(f"the {NAME} law needs 2 grokking runs, got {len(runs)}")
    trajectories = [r for r in runs if len(r.norms) >= 2]
    if not trajectories:
        raise ValueError(f"the {NAME} law needs a run with 2 checkpoints from T_mem to T_grok")
    kappa = float(np.median([trajectory_kappa(r) for r in trajectories]))
    log_v_star = float(np.mean(np.log([r.v_grok for r in runs])))
    constants = {"law": NAME, "source": SOURCE, "kappa": kappa, "log_v_star": log_v_star}
    return with_interval(constants, [predict(r, constants) for r in runs], runs)


def predict(facts, constants: dict) -> float:
    """The grokking epoch T_mem + delay (a negative delay counts as none)."""
    d = delay(facts.v_mem, constants["log_v_star"], facts.eta_lambda, constants["kappa"])
    return facts.t_mem + max(d, 0.0)
