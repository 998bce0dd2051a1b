"""Hankel dynamic-mode-decomposition residual of the loss curves, an early warning of grokking
(arXiv 2605.08237 reports a run-level AUROC of about 0.93; its text was not reachable, so the
construction below is the standard Hankel DMD of Arbabi and Mezic 2017, "Ergodic theory, dynamic
mode decomposition and computation of spectral properties of the Koopman operator", with the
window, delays and rank of grokinterp's choosing, stated in `grokinterp.prediction.indicators`).

A signal x_t (channels c) is stacked into the Hankel matrix H [c d, n - d + 1] of d delays
(column j = x_j .. x_(j+d-1)). With X = H[:, :-1], Y = H[:, 1:] and X's rank-r truncated SVD
U S V^T, the DMD operator is A = U^T Y V S^-1 (r x r), its eigenpairs (lambda_k, w_k), the modes
Phi = Y V S^-1 W (exact DMD, Tu et al. 2014) and the amplitudes b = argmin ||Phi b - h_0|| (scipy
lstsq). The reconstruction h_j = Phi diag(lambda^j) b; the residual is ||H - H_hat||_F / ||H||_F.
A signal that is a sum of at most r damped (complex) exponentials, such as r/2 damped
sinusoids, gives a zero residual (to rounding) when d > r; a change of regime inside the window
needs more modes than r and the residual jumps.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def hankel(signal: np.ndarray, delays: int) -> np.ndarray:
    """The Hankel matrix [c delays, n - delays + 1] of `signal` [n] or [n, c] (float64): column j
    holds x_j, ..., x_(j+delays-1), each a c-vector, stacked."""
    x = np.asarray(signal, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0] - delays + 1
    if n < 2:
        raise ValueError(f"{x.shape[0]} samples are too few for {delays} delays")
    return np.concatenate([x[k : k + n].T for k in range(delays)], axis=0)


def dmd_residual(signal: np.ndarray, delays: int, rank: int) -> float:
    """||H - H_hat||_F / ||H||_F of the rank-`rank` Hankel DMD reconstruction (module docstring)
    of `signal` [n] or [n, c]; 0 for an all-zero signal, NaN when it is not finite. Range
    [0, inf): 0 for a signal the rank-`rank` linear model reproduces exactly."""
    H = hankel(signal, delays)
    scale = linalg.norm(H)
    if not np.isfinite(scale):
        return float("nan")
    if scale == 0:
        return 0.0
    X, Y = H[:, :-1], H[:, 1:]
    U, s, Vh = linalg.svd(X, full_matrices=False)
    r = int(min(rank, np.sum(s > s[0] * 1e-12)))
    U, s, V = U[:, :r], s[:r], Vh[:r].conj().T
    A = U.conj().T @ Y @ V / s
    eigenvalues, W = linalg.eig(A)
    Phi = Y @ V / s @ W
    b, *_ = linalg.lstsq(Phi, H[:, 0].astype(complex))
    powers = eigenvalues[:, None] ** np.arange(H.shape[1])[None, :]
    H_hat = (Phi @ (b[:, None] * powers)).real
    return float(linalg.norm(H - H_hat) / scale)


def rolling_dmd_residual(
    signal: np.ndarray, ends: np.ndarray, window: int, delays: int, rank: int
) -> np.ndarray:
    """`dmd_residual` of the trailing `window` samples of `signal` [n] or [n, c] ending at each
    index in `ends` (inclusive), float64 [len(ends)]; NaN where fewer than `window` samples lie
    at or before the end. Causal: the value at an end never sees a later sample."""
    x = np.asarray(signal, dtype=np.float64)
    out = np.full(len(ends), np.nan)
    for i, end in enumerate(np.asarray(ends, dtype=np.int64)):
        if window - 1 <= end < len(x):
            out[i] = dmd_residual(x[end - window + 1 : end + 1], delays, rank)
    return out
