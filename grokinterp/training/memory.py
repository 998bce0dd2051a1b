"""Whether a training fits in memory, checked before anything of size p^2 (|G|^2) is built.

`training_bytes` is a lower bound on what training takes at its peak: the task's label table
(built over the whole n x n grid, with its index arrays: 6 int64 arrays of n^2), and for every
run of the batch its pairs (four 8-byte tensors each), the logits of every pair in float32 and
their float64 log-softmax (n classes each), and one float32 hidden activation of d_mlp per pair.
Since it is a lower bound, a training refused by `check_fits` could never have run; one that
passes may still run out of memory later.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError

_MEMINFO = Path("/proc/meminfo")


def training_bytes(cfgs: Sequence[RunConfig]) -> tuple[int, int]:
    """The lower bound of the module docstring for the runs `cfgs` trained as one batch, as
    (bytes built on the host whatever the device, bytes on the training device)."""
    cfg = cfgs[0]
    grid = cfg.n_elements**2
    per_pair = 4 * 8 + cfg.d_vocab_out * (4 + 8) + cfg.d_mlp * 4
    return 6 * 8 * grid + len(cfgs) * grid * 4 * 8, len(cfgs) * grid * per_pair


def available_bytes() -> int | None:
    """Memory available to a new allocation on this machine: MemAvailable of /proc/meminfo, or
    the physical memory where there is no such file (None when neither is known)."""
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_fits(cfgs: Sequence[RunConfig], device) -> None:
    """UsageError, stating the estimate, when `training_bytes(cfgs)` exceeds the memory
    available: on the host, and on the torch `device` (the host too for the CPU)."""
    import torch

    host, on_device = training_bytes(cfgs)
    device = torch.device(device)
    if device.type == "cuda":
        places = [(host, available_bytes(), "here"), (on_device, _free_cuda(device), "on the GPU")]
    else:
        places = [(host + on_device, available_bytes(), "here")]
    for need, have, where in places:
        if have is not None and need > have:
            raise UsageError(
                f"{_what(cfgs)}: training needs at least about {need / 1e9:,.1f} GB "
                f"of memory, more than the {have / 1e9:,.1f} GB available {where}"
            )


def _free_cuda(device) -> int | None:
    import torch

    try:
        return torch.cuda.mem_get_info(device)[0]
    except (RuntimeError, AssertionError):
        return None


def _what(cfgs: Sequence[RunConfig]) -> str:
    cfg = cfgs[0]
    size = f"--group {cfg.group} ({cfg.n_elements} elements)" if cfg.group else f"--p {cfg.p}"
    return (f"{len(cfgs)} runs of " if len(cfgs) > 1 else "") + size
