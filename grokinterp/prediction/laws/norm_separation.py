"""The norm-separation delay law (Truong, Truong, Luu and Phan 2026, "The Norm-Separation Delay
Law of Grokking", arXiv 2603.13331, abstract and main result):

    T_grok - T_mem = Theta((1 / gamma_eff) log(||theta_mem||^2 / ||theta_post||^2)),
    gamma_eff = eta lambda (SGD), gamma_eff >= eta lambda (AdamW),

with theta_mem the weights at the end of memorisation and theta_post those of the generalising
solution. The paper's R^2 0.97 (weight decay), 0.92 (learning rate) and Pearson r 0.91 (norm
ratio) come from 293 runs of modular addition, multiplication and sparse parity. Its abstract
gives the law up to a constant; the constant below is fitted, not the paper's:

    T_grok - T_mem = c log(V_mem / V_post) / (eta lambda),   V = ||theta||^2.

Fit (`fit`): on runs that grok, V_post is V at the first checkpoint at or after T_grok, and c is
the least-squares slope through the origin (scipy.linalg.lstsq) of (T_grok - T_mem) eta lambda
on log(V_mem / V_post); a held-out run's V_post is unknown at memorisation, so `predict` uses
log V_post = the mean of the fitting runs' log V_post. The constants hold for the optimisers of
the fitting runs only (gamma_eff differs between SGD and AdamW).
"""

from __future__ import annotations

import numpy as np

from grokinterp.errors import UsageError
from grokinterp.prediction.laws.interval import with_interval

NAME = "norm-separation"
SOURCE = "Truong et al. 2026, arXiv 2603.13331"
PUBLISHED = None
"""The paper states the law up to a constant (Theta): no complete published constants."""


def delay(v_mem: float, log_v_post: float, eta_lambda: float, c: float) -> float:
    """c log(V_mem / V_post) / (eta lambda), in epochs (steps of one full batch)."""
    return c * (np.log(v_mem) - log_v_post) / eta_lambda


def needs(facts) -> None:
    """UsageError when the run has no weight decay (nothing contracts the norm)."""
    if facts.eta_lambda <= 0:
        raise UsageError(f"{facts.name}: the {NAME} law needs weight decay (lr x wd > 0)")


def fit(runs: list) -> dict:
    """c and log V_post (module docstring) from runs that grok (RunFacts with t_grok, v_grok).
    ValueError with fewer than 2 runs or when every run has V_mem = V_post."""
    from scipy import linalg

    if len(runs) < 2:
        raise ValueError(f"the {NAME} law needs 2 grokking runs, got {len(runs)}")
    x = np.log([r.v_mem / r.v_grok for r in runs])
    y = np.array([(r.t_grok - r.t_mem) * r.eta_lambda for r in runs], dtype=np.float64)
    if not np.any(x):
        raise ValueError(f"the {NAME} law needs runs whose norm changes after memorising")
    (c,), *_ = linalg.lstsq(x[:, None], y)
    log_v_post = float(np.mean(np.log([r.v_grok for r in runs])))
    constants = {"law": NAME, "source": SOURCE, "c": float(c), "log_v_post": log_v_post}
    return with_interval(constants, [predict(r, constants) for r in runs], runs)


def predict(facts, constants: dict) -> float:
    """The grokking epoch T_mem + delay (a negative delay counts as none)."""
    d = delay(facts.v_mem, constants["log_v_post"], facts.eta_lambda, constants["c"])
    return facts.t_mem + max(d, 0.0)
