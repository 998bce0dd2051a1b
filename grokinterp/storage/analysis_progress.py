"""The checkpoints an analysis has measured so far (`Measured`), and their keeping through a kill
or a Ctrl-C: `save_progress` writes them to the analysis directory's progress file
(`grokinterp.storage.analysis_dir.PROGRESS_FILE`), `resume_progress` takes back those still
valid."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from grokinterp.storage import store
from grokinterp.storage.analysis_dir import PROGRESS_FILE


@dataclass
class Measured:
    """Measured checkpoints: table rows and per-neuron dominant component and FVE, by epoch."""

    table: pd.DataFrame
    dominant: torch.Tensor
    fve: torch.Tensor

    @classmethod
    def empty(cls, d_mlp: int) -> Measured:
        table = pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        return cls(table, torch.empty(0, d_mlp, dtype=torch.int64), torch.empty(0, d_mlp))

    def extend(self, other: Measured) -> Measured:
        table = pd.concat([self.table, other.table], ignore_index=True)
        order = torch.as_tensor(np.argsort(table["epoch"].to_numpy(), kind="stable"))
        return Measured(
            table.iloc[order.numpy()].reset_index(drop=True),
            torch.cat([self.dominant, other.dominant])[order],
            torch.cat([self.fve, other.fve])[order],
        )


def save_progress(out: Path, identity, digests: dict, measured: Measured, final_fve) -> None:
    """Keep the rows measured so far in `out`'s progress file: the table in float64 exactly
    (%.17g), the neurons' dominant component (int64) and FVE (float32) per row, and the final
    checkpoint's FVE table (float32) once measured, with what they were measured for."""
    from safetensors.torch import save

    epochs = measured.table["epoch"].tolist()
    tensors = {"dominant": measured.dominant.contiguous(), "fve": measured.fve.contiguous()}
    if final_fve is not None:
        tensors["final_fve"] = final_fve.contiguous()
    metadata = {
        "identity": json.dumps(list(identity)),
        "digests": json.dumps({str(e): digests[int(e)] for e in epochs}),
        "table": measured.table.to_csv(index=False, float_format="%.17g"),
    }
    out.mkdir(parents=True, exist_ok=True)
    store.atomic_write(out / PROGRESS_FILE, save(tensors, metadata))


def resume_progress(out: Path, identity, digests: dict, measured: Measured, final_fve):
    """`measured` (and `final_fve`) with the rows of `out`'s progress file added: those measured
    for the same identity from checkpoints still unchanged; a file for anything else is ignored."""
    from safetensors import SafetensorError, safe_open

    path = out / PROGRESS_FILE
    if not path.exists():
        return measured, final_fve
    try:
        with safe_open(path, "pt") as handle:
            metadata = handle.metadata()
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        same = json.loads(metadata["identity"]) == json.loads(json.dumps(list(identity)))
        recorded = json.loads(metadata["digests"])
        table = pd.read_csv(io.StringIO(metadata["table"]))
    except (OSError, SafetensorError, ValueError, KeyError):
        return measured, final_fve
    if not same:
        return measured, final_fve
    keep = np.array([digests.get(int(e)) == recorded.get(str(e)) for e in table["epoch"]])
    keep &= ~table["epoch"].isin(measured.table["epoch"]).to_numpy()
    if keep.any():
        rows = torch.from_numpy(keep)
        kept = Measured(
            table[keep].reset_index(drop=True), tensors["dominant"][rows], tensors["fve"][rows]
        )
        measured = measured.extend(kept)
    final = max(digests)
    if final_fve is None and recorded.get(str(final)) == digests[final] is not None:
        final_fve = tensors.get("final_fve")
    return measured, final_fve
