"""The Ray executor: one Ray task per batch, with the CPUs and GPU fraction that batch needs.

`--address ADDR` joins a running cluster (every node must see the sweep folder, e.g. on a shared
filesystem, and have grokinterp installed); without it a local Ray instance is started for the
sweep and shut down after it. A task whose worker dies is retried up to `[ray] max_retries` times
(each retry resumes from the runs' saved state), then reported as failed; an exception inside a
batch is reported at once (it would fail again). Imported only by `--executor ray`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ray

from grokinterp.errors import UsageError
from grokinterp.sweep.batch import failure, payload, run_batch_safely
from grokinterp.sweep.spec import Batch

CUDA_CONTEXT_BYTES = 600 * 2**20
"""What a process's CUDA context and the caching allocator's slack take, about."""


@dataclass
class Session:
    started_here: bool
    gpus: float


def connect(address: str | None, options: dict) -> Session:
    """Join the cluster at `address`, or start a local one; UsageError when that fails."""
    try:
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=options["local_cpus"],
                include_dashboard=False,
                log_to_driver=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UsageError(f"cannot reach {where}: {str(exc).splitlines()[0]}") from None
    return Session(address is None, ray.cluster_resources().get("GPU", 0.0))


def disconnect(session: Session) -> None:
    if session.started_here:
        ray.shutdown()


def batch_memory_bytes(batch: Batch) -> int:
    """GPU memory that training and analysing one batch takes, about: weights, gradients and
    both AdamW moments of every run, the activations of the padded splits, the metrics history,
    one analysis chunk, and the CUDA context."""
    from grokinterp.analysis.loop import CHUNK
    from grokinterp.models import architecture

    cfg, runs = batch.shared, len(batch.runs)
    pairs = max(r.config.n_train for r in batch.runs) + max(
        r.config.n_pairs - r.config.n_train for r in batch.runs
    )
    per_pair = 3 * (cfg.n_ctx * 4 * cfg.d_model + 2 * cfg.d_mlp) * 4 + 3 * cfg.p * 8
    training = runs * (
        4 * 4 * architecture(cfg).n_parameters() + pairs * per_pair + (cfg.epochs + 1) * 5 * 8
    )
    analysis = CHUNK * cfg.n_pairs * (cfg.d_mlp + cfg.p) * 4 * 4
    return training + analysis + CUDA_CONTEXT_BYTES


def gpu_fraction(batch: Batch, options: dict) -> float:
    """The share of one GPU to ask for: [ray] num_gpus, else the memory estimate against
    [ray] gpu_memory_gb, rounded up to a hundredth, at most 1."""
    if options["num_gpus"] is not None:
        return options["num_gpus"]
    share = batch_memory_bytes(batch) / (options["gpu_memory_gb"] * 1e9)
    return min(1.0, max(0.01, math.ceil(share * 100) / 100))


def run(
    session: Session, sweep: Path, batches: list[Batch], analysis: dict, device: str, options: dict
) -> Iterator[dict]:
    """Submit every batch, then yield each result as its task ends."""
    task = ray.remote(run_batch_safely)
    pending = {}
    try:
        for batch in batches:
            gpus = gpu_fraction(batch, options) if session.gpus and device != "cpu" else 0.0
            ref = task.options(
                name=f"grokinterp-sweep-{batch.id}",
                num_cpus=options["num_cpus"],
                num_gpus=gpus,
                max_retries=options["max_retries"],
                retry_exceptions=False,
            ).remote(str(sweep), batch.id, payload(batch), analysis, "cuda" if gpus else "cpu")
            pending[ref] = batch
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                batch = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:
                    text = str(exc).strip().splitlines()
                    yield failure(batch, f"{type(exc).__name__}: {text[0] if text else ''}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        disconnect(session)
