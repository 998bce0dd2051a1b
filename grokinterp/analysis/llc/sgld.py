"""devinterp's LLC estimator with its chains batched: every chain is one run along the leading
axis of the model's fast forward, so one forward and one backward serve all chains per step.

It reproduces `devinterp.slt.sampler.estimate_learning_coeff_with_summary` (devinterp 1.3.2, SGLD,
no weight decay, one step between draws) step for step (tests/test_llc.py compares the two):
- batches: devinterp computes L(w*) as the mean loss over the first min(chains, batches per
  pass) batches of its loader, then hands every chain a copy of the loader as it is after that,
  so all chains see the same batches; `batch_schedule` draws them from the same loader
  (`sample_loader`) in the same order;
- noise: chain c seeds torch with `np.random.SeedSequence(seed).generate_state(chains)[c]` and
  draws N(0, 1) per parameter, in order, at every step; here one generator per chain, seeded the
  same, draws the same numbers;
- update (Lau et al. 2023, devinterp's `SGLD.step`): dw = n beta grad L_batch(w) + gamma (w - w*);
  w <- w - eps/2 dw + sqrt(eps) N(0, 1).
The differences: the losses are kept in float64 (devinterp stores float32), and a chain that
produces a non-finite loss stops all chains at once (devinterp raises at the next draw).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain, islice, repeat

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset


def sample_loader(*tensors: Tensor, batch: int, seed: int) -> DataLoader:
    """The shuffled loader of the LLC's batches over `tensors` (each [n, ...]): the batches of
    `DataLoader(TensorDataset(*tensors), batch_size=batch, shuffle=True, generator=g)` (same
    sampler, same draws from g = Generator seeded `seed`; the last batch of a pass is short), but
    each batch is one indexing of the tensors, not n single items collated."""
    dataset = TensorDataset(*tensors)
    generator = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(RandomSampler(dataset, generator=generator), batch, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None, generator=generator)


def chain_seeds(seed: int, chains: int) -> list[int]:
    """devinterp's seed of each chain (uint32, from numpy's SeedSequence of `seed`)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(chains)]


def batch_schedule(n: int, batch: int, seed: int, chains: int, steps: int):
    """(init, steps): int64 index tensors of the batches devinterp uses for L(w*) (the first
    min(chains, batches per pass)) and, in order, for the `steps` SGLD steps of every chain
    (the loader cycled: a new shuffle per pass)."""
    loader = sample_loader(torch.arange(n), batch=batch, seed=seed)
    init = [index for (index,) in islice(loader, min(chains, len(loader)))]
    cycled: Iterator = chain.from_iterable(repeat(loader))
    return init, [index for (index,) in islice(cycled, steps)]


def sgld_losses(
    loss_of: Callable[[dict[str, Tensor], Tensor], Tensor],
    start: dict[str, Tensor],
    schedule: list[Tensor],
    seeds: list[int],
    lr: float,
    localization: float,
    nbeta: float,
) -> Tensor | None:
    """Run one SGLD chain per seed from the weights `start` ({name: float tensor}) and return
    the batch loss of every chain before every step, float64 [chains, steps]; None as soon as a
    loss is not finite (diverged). `loss_of(params, index)` maps params {name: [chains, ...]}
    and a batch's int64 indices [B] to each chain's mean loss on it (float64 [chains])."""
    names = list(start)
    sizes = [start[name].numel() for name in names]
    origin = torch.cat([start[name].reshape(-1) for name in names])
    chains = len(seeds)
    flat = origin.repeat(chains, 1).requires_grad_(True)  # [chains, P]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    noise = torch.empty_like(origin).repeat(chains, 1)
    pieces = [noise[c].split(sizes) for c in range(chains)]  # views, in parameter order
    losses = torch.empty(chains, len(schedule), dtype=torch.float64)
    for step, index in enumerate(schedule):
        params = {
            name: part.view(chains, *start[name].shape)
            for name, part in zip(names, flat.split(sizes, dim=1), strict=True)
        }
        loss = loss_of(params, index)
        if not torch.isfinite(loss).all():
            return None
        (grad,) = torch.autograd.grad(loss.sum(), flat)
        losses[:, step] = loss.detach()
        with torch.no_grad():
            for generator, chain_pieces in zip(generators, pieces, strict=True):
                for piece in chain_pieces:
                    piece.normal_(generator=generator)
            dw = grad * nbeta
            dw.add_(flat - origin, alpha=localization)
            flat.add_(dw, alpha=-0.5 * lr)
            flat.add_(noise, alpha=lr**0.5)
    return losses
