"""The pinned-norm delay law (Truong et al. 2026, "The Weight Norm Sets the Grokking Timescale:
A Causal Delay Law", arXiv 2606.13753, abstract): under free training with weight decay a run
groks when its total weight norm ||theta|| reaches W_c (coefficient of variation 1-2% across
seeds and learning rates, a power law in the modulus); with the norm held at rho W_c throughout
training,

    T_grok = A exp(alpha rho),   rho = ||theta|| / W_c,

with one exponent alpha ~ 7.5 across four moduli (R^2 0.996). A final LayerNorm removes the
dependence. The paper's A and per-modulus W_c are not in its abstract, so there are no complete
published constants; alpha is fitted.

Fit (`fit`): W_c per modulus p is the geometric mean of sqrt(V) at the first checkpoint at or
after T_grok over the free runs (fixed_norm None) of that p; log A and alpha are the intercept
and slope of log T_grok on rho = fixed_norm / W_c over the pinned runs (scipy.stats.linregress).
A run is forecast only when it holds its norm (`fixed_norm`, grokinterp's Omnigrok rescale of
the trained weights after every step) and its modulus has a W_c.
"""

from __future__ import annotations

import numpy as np

from grokinterp.errors import UsageError
from grokinterp.prediction.laws.interval import with_interval

NAME = "pinned-norm"
SOURCE = "Truong et al. 2026, arXiv 2606.13753"
PUBLISHED = None
"""The abstract gives alpha ~ 7.5 but neither A nor W_c: no complete published constants."""


def grok_epoch(rho: float, log_a: float, alpha: float) -> float:
    """A exp(alpha rho), in epochs."""
    return float(np.exp(log_a + alpha * rho))


def needs(facts) -> None:
    """UsageError when the run does not hold its norm fixed."""
    if facts.fixed_norm is None:
        raise UsageError(
            f"{facts.name}: the {NAME} law needs a run that holds its norm (fixed_norm); "
            "this one trained with a free norm"
        )


def check(facts, constants: dict) -> None:
    """UsageError when the run's modulus has no W_c in the constants."""
    if str(facts.p) not in constants["w_c"]:
        known = ", ".join(constants["w_c"]) or "none"
        raise UsageError(f"{facts.name}: no W_c for p = {facts.p} in the constants (p = {known})")


def critical_norms(free_runs: list) -> dict[str, float]:
    """{str(p): W_c}: the geometric mean of sqrt(V at grokking) over the free runs of each p."""
    by_p: dict[str, list[float]] = {}
    for r in free_runs:
        by_p.setdefault(str(r.p), []).append(0.5 * np.log(r.v_grok))
    return {p: float(np.exp(np.mean(logs))) for p, logs in by_p.items()}


def fit(runs: list) -> dict:
    """W_c, log A and alpha (module docstring) from runs that grok, free and pinned. ValueError
    when no free run gives a W_c for the pinned runs' moduli, or fewer than 2 distinct rho."""
    from scipy import stats

    w_c = critical_norms([r for r in runs if r.fixed_norm is None])
    pinned = [r for r in runs if r.fixed_norm is not None and str(r.p) in w_c]
    rho = np.array([r.fixed_norm / w_c[str(r.p)] for r in pinned], dtype=np.float64)
    if len(np.unique(rho)) < 2:
        raise ValueError(
            f"the {NAME} law needs free grokking runs (for W_c) and pinned runs at 2 norms or "
            f"more of the same moduli; got {len(w_c)} moduli with W_c, {len(np.unique(rho))} norms"
        )
    t_grok = np.array([r.t_grok for r in pinned], dtype=np.float64)
    line = stats.linregress(rho, np.log(t_grok))
    constants = {
        "law": NAME,
        "source": SOURCE,
        "alpha": float(line.slope),
        "log_a": float(line.intercept),
        "w_c": w_c,
        "r_squared": float(line.rvalue**2),
    }
    return with_interval(constants, [predict(r, constants) for r in pinned], pinned)


def predict(facts, constants: dict) -> float:
    """The grokking epoch A exp(alpha rho) of a pinned run (never before T_mem)."""
    rho = facts.fixed_norm / constants["w_c"][str(facts.p)]
    return max(grok_epoch(rho, constants["log_a"], constants["alpha"]), float(facts.t_mem))
