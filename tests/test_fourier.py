import math

import torch

from grokinterp.bases import fourier
from grokinterp.bases.base import transform_2d


def test_basis_is_orthonormal():
    for p in (3, 7, 59, 113):
        F = fourier.basis(p)
        torch.testing.assert_close(F @ F.T, torch.eye(p, dtype=torch.float64))


def test_each_named_row_is_the_function_its_name_says():
    p = 13
    F, names = fourier.basis(p), fourier.basis_names(p)
    assert len(names) == p and names[:5] == ["const", "cos 1", "sin 1", "cos 2", "sin 2"]
    x = torch.arange(p, dtype=torch.float64)
    for row, name in zip(F, names, strict=True):
        if name == "const":
            want = torch.ones(p)
        else:
            kind, k = name.split()
            want = getattr(torch, kind)(2 * math.pi * int(k) * x / p)
        torch.testing.assert_close(row, want.double() / want.double().norm())


def test_transforms_invert_and_find_a_pure_frequency():
    p = 11
    x = torch.arange(p, dtype=torch.float64)
    signal = 3 * torch.sin(2 * math.pi * 4 * x / p)
    coefficients = fourier.transform(signal)
    names = fourier.basis_names(p)
    assert names[int(coefficients.abs().argmax())] == "sin 4"
    torch.testing.assert_close(fourier.basis(p).T @ coefficients, signal)
    norms = fourier.frequency_norms(coefficients)
    torch.testing.assert_close(norms[3], signal.norm())
    assert norms.sum() - norms[3] < 1e-9

    grid = torch.randn(3, p, p, 2, dtype=torch.float64)
    F = fourier.basis(p)
    B = fourier.fourier_basis(p)
    torch.testing.assert_close(transform_2d(grid, B, B)[2, ..., 1], F @ grid[2, ..., 1] @ F.T)
