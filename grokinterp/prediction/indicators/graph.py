"""The Fiedler value (algebraic connectivity; Fiedler 1973) of an MLP's weight graph: the
second-smallest eigenvalue of the Laplacian L = D - A of the graph whose nodes are the units of
consecutive layers and whose edge weights are |w_ij|. 0 exactly when the graph falls apart;
larger when it is well connected; it is bounded by the smallest weighted degree times n/(n-1)."""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.sparse import csgraph


def layered_adjacency(weights: list[np.ndarray]) -> np.ndarray:
    """The symmetric adjacency [units, units] of a chain of weight matrices W_l [n_l, n_(l+1)]
    (units of layer l connect to units of layer l + 1 with weight |W_l[i, j]|); units are
    numbered layer by layer. ValueError when consecutive shapes do not chain."""
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    for w, (rows, cols) in zip(weights, zip(sizes, sizes[1:], strict=False), strict=True):
        if w.shape != (rows, cols):
            raise ValueError(f"weight of shape {w.shape} does not chain after {rows} units")
    offsets = np.cumsum([0, *sizes])
    adjacency = np.zeros((offsets[-1], offsets[-1]))
    for layer, w in enumerate(weights):
        rows = slice(offsets[layer], offsets[layer + 1])
        cols = slice(offsets[layer + 1], offsets[layer + 2])
        adjacency[rows, cols] = np.abs(w)
    return adjacency + adjacency.T


def fiedler_value(adjacency: np.ndarray) -> float:
    """lambda_2 of the graph Laplacian of a symmetric non-negative adjacency matrix (scipy's
    `csgraph.laplacian`, unnormalised), >= 0 (float). Needs at least 2 nodes."""
    laplacian = csgraph.laplacian(np.asarray(adjacency, dtype=np.float64))
    return float(max(linalg.eigh(laplacian, eigvals_only=True, subset_by_index=[1, 1])[0], 0.0))
