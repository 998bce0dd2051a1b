"""The local learning coefficient (LLC) of singular learning theory, estimated by SGLD: through
devinterp's sampler (`estimate_llc`; `pip install 'grokinterp[llc]'`, devinterp 1.3.2, imported
only here, when used), or the same estimator with the chains batched (`estimate_llc_batched`,
grokinterp.analysis.llc.sgld; what `analyze --llc` runs).

Lau, Furman, Wang, Murfet and Wei, "The Local Learning Coefficient: A Singularity-Aware
Complexity Measure" (2023): around a parameter w* the estimate is

    lambda_hat(w*) = n beta (E_w[L_n(w)] - L_n(w*)),

the expectation over the localised tempered posterior p(w) ~ exp(-n beta L_n(w) - gamma/2
|w - w*|^2), sampled by SGLD: w <- w - eps/2 (n beta grad L_batch(w) + gamma (w - w*)) +
N(0, eps). L_n is the loss on the n training pairs (here the run's own loss: float64
cross-entropy), n beta the inverse temperature (devinterp's default B / log B for a batch of B),
gamma the localisation, eps the step size. On a regular model with d parameters at a minimum the
LLC is d/2; degenerate directions lower it. Each chain starts at w*; lambda_hat is averaged over
the draws of a chain after burn-in, and the chains' mean and spread are reported.

An estimate whose loss trace is not finite, or whose LLC is not, has diverged: it is reported as
`diverged`, never as a number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from grokinterp.analysis.llc.sgld import batch_schedule, chain_seeds, sgld_losses
from grokinterp.errors import UsageError

INSTALL_HINT = "the LLC needs devinterp: pip install 'grokinterp[llc]'"


@dataclass(frozen=True)
class LLCSettings:
    """SGLD settings of one LLC estimate (stored with every result). The defaults were picked
    with `grokinterp llc-calibrate` on a grokked small-preset run (docs/llc.md, "Calibration:
    choosing the step size and localisation"): the largest step size whose estimate was stable
    at that localisation; 30 burn-in steps and 70 draws from scripts/llc_settings_study.py (as
    close to long chains as 100 draws after 50 steps, at two thirds of the cost)."""

    lr: float = 1e-4
    """Step size eps of SGLD (> 0)."""
    localization: float = 1000.0
    """gamma: strength of the pull back to w* (>= 0)."""
    nbeta: float | None = None
    """Inverse temperature n beta (> 0); None: devinterp's default B / log B."""
    chains: int = 4
    draws: int = 70
    """Draws per chain after burn-in (>= 1)."""
    burnin: int = 30
    """SGLD steps per chain before the first draw (>= 0)."""
    batch_size: int = 512
    """Training pairs per SGLD step (>= 2; the whole training set when it has fewer)."""
    seed: int = 0
    """Seeds the shuffling of the batches and, through devinterp's rule (numpy's SeedSequence),
    each chain's noise."""

    def validate(self) -> LLCSettings:
        """UsageError (one line) for a setting outside its range."""
        checks = [
            (math.isfinite(self.lr) and self.lr > 0, f"LLC step size must be > 0, got {self.lr}"),
            (
                math.isfinite(self.localization) and self.localization >= 0,
                f"LLC localization must be >= 0, got {self.localization}",
            ),
            (
                self.nbeta is None or (math.isfinite(self.nbeta) and self.nbeta > 0),
                f"LLC inverse temperature nbeta must be > 0, got {self.nbeta}",
            ),
            (self.chains >= 1, f"LLC chains must be >= 1, got {self.chains}"),
            (self.draws >= 1, f"LLC draws must be >= 1, got {self.draws}"),
            (self.burnin >= 0, f"LLC burn-in must be >= 0, got {self.burnin}"),
            (self.batch_size >= 2, f"LLC batch size must be >= 2, got {self.batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def nbeta_for(self, batch: int) -> float:
        """The inverse temperature for batches of `batch` pairs: `nbeta`, or devinterp's default
        B / log B."""
        return self.nbeta if self.nbeta is not None else batch / math.log(batch)


@dataclass(frozen=True)
class LLCResult:
    """One LLC estimate. `llc_mean`, `llc_std` and `per_chain` are None when it diverged."""

    llc_mean: float | None
    llc_std: float | None
    """Standard deviation across chains (Bessel-corrected; NaN for one chain)."""
    per_chain: list[float] | None
    init_loss: float
    """L(w*) as devinterp measures it (mean loss over the first batches); NaN if diverged."""
    loss_trace: np.ndarray
    """float64 [chains, draws]: the batch loss at every draw (the chains' trace)."""
    nbeta: float
    """The inverse temperature used."""
    status: str
    """`ok`, or `diverged: <why>`."""
    acceptance: float | None = None
    """Mean MALA acceptance rate of the SGLD proposals (devinterp's `MalaAcceptanceRate`; near 1
    when the step size is small enough for the posterior), when asked for."""

    @property
    def drift(self) -> float:
        """n beta times (mean loss over the second half of the draws - over the first half),
        averaged over chains: the LLC's change within the chains, near 0 once they have
        settled (NaN when diverged)."""
        half = self.loss_trace.shape[1] // 2
        if half == 0:
            return math.nan
        late, early = self.loss_trace[:, half:].mean(), self.loss_trace[:, :half].mean()
        return float(self.nbeta * (late - early))


def require_devinterp() -> None:
    """UsageError (one line, how to install) when devinterp is missing."""
    try:
        import devinterp  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def estimate_llc(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    loss: Callable[[Tensor, Tensor], Tensor],
    settings: LLCSettings,
    acceptance: bool = False,
) -> LLCResult:
    """The LLC of `model` at its current weights w* on the data (inputs [n, ...], targets [n]),
    with `loss(model(inputs), targets)` the mean loss of a batch (float64 for the result's
    numbers). SGLD runs through devinterp's `estimate_learning_coeff_with_summary`; the model's
    weights are left as they were. `acceptance`: also measure the MALA acceptance rate."""
    require_devinterp()
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.mala import MalaAcceptanceRate
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    from torch.utils.data import DataLoader, TensorDataset

    settings.validate()
    batch = min(settings.batch_size, len(inputs))
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(
        TensorDataset(inputs, targets), batch_size=batch, shuffle=True, generator=generator
    )
    nbeta = settings.nbeta_for(batch)
    kwargs = {"lr": settings.lr, "localization": settings.localization, "nbeta": nbeta}

    mala = (
        MalaAcceptanceRate(settings.chains, settings.draws, settings.lr, nbeta=nbeta)
        if acceptance
        else None
    )

    def evaluate(net: nn.Module, data) -> Tensor:
        x, y = data
        return loss(net(x), y)

    with warnings.catch_warnings():  # devinterp warns about batches it cycles; expected here
        warnings.simplefilter("ignore")
        try:
            out = estimate_learning_coeff_with_summary(
                model,
                loader,
                evaluate=evaluate,
                sampling_method=SGLD,
                optimizer_kwargs=kwargs,
                num_draws=settings.draws,
                num_chains=settings.chains,
                num_burnin_steps=settings.burnin,
                seed=settings.seed,
                verbose=False,
                callbacks=[mala] if mala else [],
            )
        except RuntimeError as error:  # devinterp: "NaN detected in loss at chain c, draw d"
            if "NaN" not in str(error):
                raise
            trace = np.full((settings.chains, settings.draws), np.nan)
            return LLCResult(None, None, None, math.nan, trace, nbeta, f"diverged: {error}")
    trace = np.asarray(out["loss/trace"], dtype=np.float64)
    per_chain = [float(out[f"llc-chain/{c}"]) for c in range(settings.chains)]
    if not (np.isfinite(trace).all() and np.isfinite(per_chain).all()):
        return LLCResult(None, None, None, math.nan, trace, nbeta, "diverged: loss not finite")
    init_loss = float(trace[0].mean() - per_chain[0] / nbeta)  # llc_c = nbeta (mean_c - L(w*))
    rate = float(out["mala_accept/mean"]) if mala else None
    return _summary(per_chain, init_loss, trace, nbeta, rate)


def _summary(per_chain, init_loss, trace, nbeta, acceptance=None) -> LLCResult:
    std = float(np.std(per_chain, ddof=1)) if len(per_chain) > 1 else math.nan
    mean = float(np.mean(per_chain))
    return LLCResult(mean, std, list(per_chain), init_loss, trace, nbeta, "ok", acceptance)


def estimate_llc_batched(
    loss_of: Callable[[dict[str, Tensor], Tensor], Tensor],
    start: dict[str, Tensor],
    n: int,
    settings: LLCSettings,
) -> LLCResult:
    """`estimate_llc`'s estimate (devinterp's, step for step: grokinterp.analysis.llc.sgld) with the
    chains batched, for a model whose `loss_of(params, index)` maps params {name: [chains, ...]} and
    int64 indices [B] into its n training pairs to each chain's mean loss on them (float64
    [chains]); `start` the float32 weights w* {name: tensor} (the sampled ones). The loss trace,
    L(w*) and the LLC are float64. Needs no devinterp."""
    settings.validate()
    batch = min(settings.batch_size, n)
    nbeta = settings.nbeta_for(batch)
    steps = settings.burnin + settings.draws
    init, schedule = batch_schedule(n, batch, settings.seed, settings.chains, steps)
    with torch.no_grad():
        at_start = {name: value[None] for name, value in start.items()}
        init_loss = sum(float(loss_of(at_start, index)[0]) for index in init) / len(init)
    seeds = chain_seeds(settings.seed, settings.chains)
    losses = sgld_losses(loss_of, start, schedule, seeds, settings.lr, settings.localization, nbeta)
    if losses is None or not math.isfinite(init_loss):
        trace = np.full((settings.chains, settings.draws), np.nan)
        return LLCResult(None, None, None, math.nan, trace, nbeta, "diverged: loss not finite")
    trace = losses[:, settings.burnin :].numpy()
    per_chain = nbeta * (trace.mean(axis=1) - init_loss)
    return _summary([float(x) for x in per_chain], init_loss, trace, nbeta)
