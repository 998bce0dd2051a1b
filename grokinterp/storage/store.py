"""The run directory on disk: every file written atomically or appended safely, never unpickled.

    RUN/config.json                 the RunConfig (JSON)
    RUN/split.json                  {"train_indices": [...]}: sorted pair indices a * p + b
                                    (+ "noisy_labels": {index: label}, with label noise)
    RUN/metrics.csv                 one row per epoch: losses (float64) and accuracies
    RUN/metrics.jsonl               the same rows as JSON lines {"epoch": e, "train_loss": ...}
                                    (null where not recorded), for trackers (`grokinterp replay`)
    RUN/checkpoints/epoch_0000100.safetensors
                                    float32 weights with HookedTransformer names (+ bool mask);
                                    metadata: epoch, the run config, the tensors' sha256
    RUN/state_0000100.safetensors   the full training state after 100 steps, for --resume
                                    (with the tensors' sha256 too); which step a run resumes
                                    from is its group's decision (`grokinterp.training.batch_state`)
    RUN/group.json                  the runs trained with it, in batch order, and their
                                    committed step (`grokinterp.training.batch_state`)
    RUN/.lock                       while a process writes the run: flocked by it, naming its
                                    pid, host and command (`grokinterp.storage.run_lock`); one
                                    writer at a time, readers never need it

A file is first written to a hidden temporary name in the same directory and then renamed, so a
killed process leaves either the complete old file or the complete new one.

metrics.csv is the exception: it is created with its header alone, and each checkpoint appends
the rows since the previous one (one write, flushed and fsynced before the state is saved), so
its cost stays linear in the run's length. A killed process may leave a torn last line; readers
take only newline-terminated lines, and --resume first cuts the file back to the rows its saved
state covers, then appends from there. metrics.jsonl follows it: appended right after it, cut
back with it (rewritten whole from the rows kept, so a run made before the stream gets one).

safetensors has no checksum of its own, so checkpoints and the state carry one in their metadata
(`tensors_sha256`, see `tensor_digest`); every load verifies it and refuses a corrupt file.
Format-1 checkpoints and states, written before the digest, still load unverified.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import Tensor

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.run_lock import LOCK_FILE

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.csv"
METRICS_STREAM = "metrics.jsonl"
LEGACY_STATE_FILE = "state.safetensors"
"""The one state file of a run written before group commits (see
`grokinterp.training.batch_state`)."""
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FORMAT = "grokinterp-checkpoint-2"
STATE_FORMAT = "grokinterp-state-2"
DIGEST_KEY = "tensors_sha256"
"""Metadata key of the tensors' digest, in format-2 checkpoints and states (not in format 1)."""
_CHECKPOINT_FORMATS = (CHECKPOINT_FORMAT, "grokinterp-checkpoint-1")
_STATE_FORMATS = (STATE_FORMAT, "grokinterp-state-1")
METRIC_COLUMNS = ("epoch", "train_loss", "test_loss", "train_acc", "test_acc", "test_acc_unseen")
"""`test_acc_unseen`: accuracy on the test pairs (a, b) whose swap (b, a) is not in training."""
_METRICS_HEADER = (",".join(METRIC_COLUMNS) + "\n").encode()
_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)\.safetensors$")
_STATE_NAME = re.compile(r"^state_(\d+)\.safetensors$")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk names the file it could not write
        exc.filename = exc.filename or str(path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{epoch:07d}.safetensors"


def tensor_digest(header: dict, body: bytes | memoryview) -> str:
    """The hex sha256 of the tensors of a safetensors file, given its JSON header and the bytes
    after it: for each tensor in sorted name order, its name, dtype (safetensors' spelling, e.g.
    F32, BOOL) and shape (e.g. 4,64; empty for a scalar), each followed by a NUL byte, then its
    raw little-endian bytes."""
    hasher = hashlib.sha256()
    for name in sorted(header.keys() - {"__metadata__"}):
        entry = header[name]
        shape = ",".join(str(n) for n in entry["shape"])
        hasher.update(f"{name}\0{entry['dtype']}\0{shape}\0".encode())
        start, end = entry["data_offsets"]
        hasher.update(body[start:end])
    return hasher.hexdigest()


def _split_header(data: bytes) -> tuple[dict, memoryview]:
    """The JSON header of a safetensors file's bytes, and the tensor bytes after it."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), memoryview(data)[8 + length :]


def _with_digest(tensors: dict[str, Tensor], metadata: dict[str, str]) -> bytes:
    """`tensors` as safetensors bytes, with `metadata` and the digest of the tensors. The same
    tensors and metadata always give the same bytes: the metadata is written here, in sorted
    order (safetensors writes it in a random one), the header padded to 8 bytes as it does."""
    header, body = _split_header(save(tensors))
    metadata = dict(sorted({**metadata, DIGEST_KEY: tensor_digest(header, body)}.items()))
    text = json.dumps({"__metadata__": metadata, **header}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + bytes(body)


def save_checkpoint(run_dir: Path, cfg: RunConfig, epoch: int, state: dict[str, Tensor]) -> Path:
    path = checkpoint_path(run_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": CHECKPOINT_FORMAT, "epoch": str(epoch), "config": cfg.to_json()}
    atomic_write(path, _with_digest(state, metadata))
    return path


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every complete checkpoint, by epoch. Temporary files are never listed."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _read_safetensors(
    path: Path, formats: tuple[str, ...], what: str
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a file whose format is one of `formats`, the first of which
    carries a digest that must match the tensors."""
    try:
        data = Path(path).read_bytes()
        tensors = load(data)
        header, body = _split_header(data)
    except (OSError, SafetensorError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None
    metadata = header.get("__metadata__", {})
    if metadata.get("format") not in formats:
        raise UsageError(f"{path}: not a {what}")
    if metadata["format"] == formats[0] and metadata.get(DIGEST_KEY) != tensor_digest(header, body):
        raise UsageError(f"{path}: checksum mismatch, the file is corrupt")
    return tensors, metadata


def header_metadata(path: Path) -> dict:
    """The metadata of a safetensors file, from its header alone (nothing verified)."""
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if length > os.fstat(handle.fileno()).st_size:
                raise ValueError("header longer than the file")
            return json.loads(handle.read(length)).get("__metadata__", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None


def checkpoint_digest(path: Path) -> str | None:
    """The tensor digest (hex sha256, see `tensor_digest`) stored in a checkpoint, or None for
    a format-1 checkpoint. Reads the header only, not the tensors, and verifies nothing."""
    metadata = header_metadata(path)
    if metadata.get("format") not in _CHECKPOINT_FORMATS:
        raise UsageError(f"{path}: not a grokinterp checkpoint")
    return metadata.get(DIGEST_KEY)


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of a checkpoint file, the tensors checked against their digest
    (format 2); nothing else verified (see `load_checkpoint`)."""
    return _read_safetensors(path, _CHECKPOINT_FORMATS, "grokinterp checkpoint")


def checkpoint_config(path: Path, metadata: dict[str, str]) -> RunConfig:
    """The run config in a checkpoint's metadata, parsed and validated."""
    try:
        return RunConfig.from_json(metadata["config"])
    except (KeyError, ValueError, UsageError) as exc:
        raise UsageError(f"{path}: bad checkpoint metadata ({exc})") from None


def checkpoint_epoch(path: Path, metadata: dict[str, str]) -> int:
    """The epoch in a checkpoint's metadata."""
    try:
        return int(metadata["epoch"])
    except (KeyError, ValueError) as exc:
        raise UsageError(f"{path}: bad checkpoint metadata ({exc})") from None


def ordered_state(path: Path, tensors: dict[str, Tensor], names: list[str]) -> dict[str, Tensor]:
    """A checkpoint's tensors in the order `names` (its model's `state_names`); UsageError when
    it holds other tensors than those."""
    if sorted(tensors) != sorted(names):
        raise UsageError(f"{path}: tensors do not match the model of its run config")
    return {name: tensors[name] for name in names}


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], int, RunConfig]:
    """The state dict (in HookedTransformer order), epoch and run config of one checkpoint,
    after checking the tensors against their digest (format 2). A run's own series reads
    faster through `grokinterp.storage.run.Run.checkpoint_state`, which validates no config."""
    tensors, metadata = read_checkpoint(path)
    cfg = checkpoint_config(path, metadata)
    epoch = checkpoint_epoch(path, metadata)
    from grokinterp.models import architecture

    return ordered_state(path, tensors, architecture(cfg).state_names()), epoch, cfg


def run_files(run_dir: Path) -> list[Path]:
    """What a run directory holds but its lock file (`grokinterp.storage.run_lock`); [] when it does
    not exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return [path for path in run_dir.iterdir() if path.name != LOCK_FILE]


def check_fresh_run_dir(run_dir: Path) -> None:
    """Refuse a path that is a file, or a directory that already holds files (a lock file
    alone does not count): it may be another run."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory; choose another --out")
    if not run_files(run_dir):
        return
    if (run_dir / CONFIG_FILE).exists():
        raise UsageError(f"{run_dir} already holds another run; choose another --out")
    raise UsageError(
        f"{run_dir} already holds files but no run; choose another --out, or move them away"
    )


def write_run_files(
    run_dir: Path, cfg: RunConfig, train_indices: Tensor, noisy_labels: dict[int, int] | None = None
) -> None:
    """config.json, split.json (with `noisy_labels`, {grid index: label} of the training pairs
    whose label noise replaced, when there are any) and metrics.csv's header."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / CONFIG_FILE, cfg.to_json().encode())
    split = {"train_indices": [int(i) for i in train_indices]}
    if noisy_labels:
        split["noisy_labels"] = {str(k): int(v) for k, v in sorted(noisy_labels.items())}
    atomic_write(run_dir / SPLIT_FILE, json.dumps(split).encode())
    atomic_write(run_dir / METRICS_FILE, _METRICS_HEADER)


def read_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        text = path.read_text()
    except OSError:
        raise UsageError(f"{path}: missing; is {run_dir} a grokinterp run directory?") from None
    try:
        return RunConfig.from_json(text)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


def read_split(run_dir: Path) -> Tensor:
    """The sorted train pair indices (int64) stored with the run."""
    path = Path(run_dir) / SPLIT_FILE
    try:
        return torch.tensor(json.loads(path.read_text())["train_indices"], dtype=torch.int64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable split ({exc})") from None


def read_noisy_labels(run_dir: Path) -> dict[int, int]:
    """{grid index: label} of the training pairs whose label noise replaced ({} without)."""
    path = Path(run_dir) / SPLIT_FILE
    try:
        noisy = json.loads(path.read_text()).get("noisy_labels", {})
        return {int(k): int(v) for k, v in noisy.items()}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable split ({exc})") from None


def append_metrics(run_dir: Path, rows: np.ndarray) -> None:
    """Append rows of METRIC_COLUMNS (float64, epoch first) to metrics.csv in one write, flushed
    and fsynced; losses and accuracies keep full float64 precision (%.17g)."""
    path = Path(run_dir) / METRICS_FILE
    text = "".join(
        f"{int(epoch)}," + ",".join(f"{x:.17g}" for x in values) + "\n"
        for epoch, *values in rows.tolist()
    )
    if not path.exists():  # never created here: the header comes from write_run_files
        raise UsageError(f"{path}: missing; was the run directory changed?")
    _append(path, text.encode())
    _append(Path(run_dir) / METRICS_STREAM, _stream_lines(rows))


def _append(path: Path, data: bytes) -> None:
    try:
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise


def metric_records(rows: np.ndarray) -> list[dict]:
    """Rows of METRIC_COLUMNS (float64, epoch first) as dicts {"epoch": int, column: float or
    None}, None where the value is NaN (not recorded)."""
    records = []
    for epoch, *values in rows.tolist():
        row = {"epoch": int(epoch)}
        pairs = zip(METRIC_COLUMNS[1:], values, strict=True)
        row.update((column, None if math.isnan(v) else v) for column, v in pairs)
        records.append(row)
    return records


def _stream_lines(rows: np.ndarray) -> bytes:
    """Rows as JSON lines (floats round-trip exactly)."""
    return "".join(json.dumps(row) + "\n" for row in metric_records(rows)).encode()


def read_metrics_stream(run_dir: Path) -> list[dict]:
    """The complete rows of metrics.jsonl (a torn last line left out); for a run made before the
    stream, the rows of metrics.csv in the same form."""
    try:
        lines = (Path(run_dir) / METRICS_STREAM).read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return metric_records(read_metrics_array(run_dir))
    try:
        return [json.loads(line) for line in lines]
    except ValueError as exc:
        raise UsageError(f"{Path(run_dir) / METRICS_STREAM}: unreadable ({exc})") from None


def _metrics_lines(path: Path) -> list[bytes]:
    """The complete lines of metrics.csv, header first, without their newlines; [] when there is
    no file yet. A last line with no newline (a row being appended, or torn by a crash) is left
    out, so no reader ever sees a partial row."""
    try:
        lines = path.read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return []
    if lines and lines[0] + b"\n" != _METRICS_HEADER:
        raise UsageError(f"{path}: not a grokinterp metrics file (header {lines[0][:80]!r})")
    return lines


def _parse_metrics(path: Path, rows: list[bytes]) -> np.ndarray:
    """Complete metrics lines (no header) as a float64 array, one row per line."""
    if not rows:
        return np.empty((0, len(METRIC_COLUMNS)))
    try:
        return np.loadtxt(rows, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise UsageError(f"{path}: unreadable metrics ({exc})") from None


def read_metrics_array(run_dir: Path) -> np.ndarray:
    """The complete rows of metrics.csv as float64, shape (rows, len(METRIC_COLUMNS)), epoch
    first; empty when there is no file yet. Safe while the run is still appending."""
    path = Path(run_dir) / METRICS_FILE
    return _parse_metrics(path, _metrics_lines(path)[1:])


def truncate_metrics(run_dir: Path, rows: int) -> np.ndarray:
    """Cut metrics.csv back to its header and the rows of epochs 0 .. rows - 1, those that a
    saved state at step `rows` covers, and return them (float64). Rows written after that state,
    complete or torn, are dropped: the resumed run appends them again."""
    path = Path(run_dir) / METRICS_FILE
    lines = _metrics_lines(path)
    kept = _parse_metrics(path, lines[1 : rows + 1])
    if not lines or not np.array_equal(kept[:, 0], np.arange(rows)):
        raise UsageError(f"{path}: lacks the header or the {rows} rows that the saved state covers")
    with open(path, "r+b") as handle:
        handle.truncate(sum(len(line) + 1 for line in lines[: rows + 1]))
        handle.flush()
        os.fsync(handle.fileno())
    atomic_write(Path(run_dir) / METRICS_STREAM, _stream_lines(kept))
    return kept


def state_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"state_{step:07d}.safetensors"


def list_states(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step-tagged state file of a run, by step."""
    found = []
    for path in Path(run_dir).iterdir():
        match = _STATE_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_state(run_dir: Path, step: int, tensors: dict[str, Tensor], finished: bool) -> None:
    """The full training state (weights, the recipe's named state tensors: AdamW moments
    `m.<name>`, `v.<name>`, ...; the RNG) after `step` steps, in its own step-tagged file."""
    metadata = {"format": STATE_FORMAT, "step": str(step), "finished": str(finished)}
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    atomic_write(state_path(run_dir, step), _with_digest(cpu, metadata))


def read_state(path: Path) -> tuple[dict[str, Tensor], int, bool]:
    """A state file's tensors (checked against their digest), step and whether it is final."""
    tensors, metadata = _read_safetensors(path, _STATE_FORMATS, "grokinterp training state")
    return tensors, int(metadata["step"]), metadata["finished"] == "True"
