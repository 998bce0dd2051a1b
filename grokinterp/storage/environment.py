"""The reproducibility record of a run directory: `environment.json`.

    {"format": 1, "records": [{"event": "train" | "resume" | "import", <fields of `current`>}, ...]}

One record is added when a run is trained, resumed or imported: the torch, CUDA, cuDNN,
grokinterp and Python versions, the platform, the device's name and the deterministic flags in
force. The same seed on another GPU or library version can learn other frequencies, so resuming
on an environment that differs from the latest record prints a warning naming the differences,
and so does comparing runs made on different environments (`compare`, used by `sweep-report`).
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import torch

from grokinterp.storage.store import atomic_write

ENVIRONMENT_FILE = "environment.json"
COMPARED = ("torch", "cuda", "cudnn", "grokinterp", "device", "deterministic", "compiled")
"""The fields whose change can change a run's numbers."""


def current(device: torch.device | str = "cpu") -> dict:
    """This process's environment for a run on `device` (JSON-ready)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{device.type}: {platform.processor() or platform.machine()}"
    try:
        version = metadata.version("grokinterp")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "grokinterp": version,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": name,
        "deterministic": {
            "algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "threads": torch.get_num_threads(),
        },
    }


def records(run_dir: Path) -> list[dict]:
    """The run's records, oldest first ([] for a run made before the record existed)."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    try:
        return json.loads(path.read_text())["records"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record(
    run_dir: Path, event: str, device: torch.device | str = "cpu", compiled: bool | None = None
) -> dict:
    """Append this environment to the run's record (written atomically) and return it; with
    `compiled`, whether the epochs run through the compiled epoch
    (`grokinterp.training.compiled`)."""
    entry = {"event": event, **current(device)}
    if compiled is not None:
        entry["compiled"] = compiled
    data = {"format": 1, "records": [*records(run_dir), entry]}
    atomic_write(Path(run_dir) / ENVIRONMENT_FILE, json.dumps(data, indent=2).encode())
    return entry


ABSENT = {"compiled": False}
"""The value of a field that records written before it existed lack."""


def differences(before: dict, after: dict) -> list[str]:
    """`field: old -> new` for each COMPARED field that differs."""
    old = {name: before.get(name, ABSENT.get(name)) for name in COMPARED}
    new = {name: after.get(name, ABSENT.get(name)) for name in COMPARED}
    return [f"{name}: {old[name]} -> {new[name]}" for name in COMPARED if old[name] != new[name]]


def resume(run_dir: Path, device: torch.device | str, compiled: bool | None = None) -> None:
    """Record a resume, warning on stderr when the environment differs from the latest record."""
    previous = records(run_dir)
    entry = record(run_dir, "resume", device, compiled)
    changed = differences(previous[-1], entry) if previous else []
    if changed:
        print(
            f"warning: {run_dir} resumes on another environment ({'; '.join(changed)}): "
            "the continued run may differ from one trained on the first",
            file=sys.stderr,
        )


def mixed(run_dirs: list[Path]) -> list[str]:
    """For the runs' latest records, `field: value (n runs), value (m runs)` for each COMPARED
    field on which they differ; runs without a record are left out."""
    latest = [found[-1] for found in map(records, run_dirs) if found]
    out = []
    for name in COMPARED:
        counts: dict[str, int] = {}
        for entry in latest:
            value = json.dumps(entry.get(name), sort_keys=True)
            counts[value] = counts.get(value, 0) + 1
        if len(counts) > 1:
            out.append(f"{name}: " + ", ".join(f"{v} ({n} runs)" for v, n in counts.items()))
    return out


def compare(run_dirs: list[Path], what: str) -> None:
    """Warn on stderr, in one line, when the runs being compared in `what` were made on
    different environments (their numbers may differ for that reason alone)."""
    changed = mixed(run_dirs)
    if changed:
        print(
            f"warning: {what} compares runs made on different environments ({'; '.join(changed)})",
            file=sys.stderr,
        )
