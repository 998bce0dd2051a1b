"""The LLC of every checkpoint of a run (`grokinterp analyze --llc`) and the calibration sweep
(`grokinterp llc-calibrate`), on the run's training pairs with the run's own loss (float64
cross-entropy at the answer). Estimator and settings: `grokinterp.analysis.llc.estimator`.

Files, written atomically beside the analysis (`analyses/<run>/`), only after every checkpoint
has been estimated (re-running estimates only checkpoints that are new or changed, or all of them
when the settings change):
    llc.csv               one row per checkpoint: epoch, llc_mean, llc_std (across chains),
                          llc_chain<c>, init_loss, drift, status (`ok` or `diverged: ...`;
                          the numbers are empty when diverged)
    llc.json              the settings (with the inverse temperature used), the sampler,
                          devinterp's version, the run's fingerprint (config and split), the
                          number of training pairs, the parameters sampled and the digest of
                          every checkpoint estimated
    llc_traces.safetensors  `epochs` int64 [ckpt], `loss_trace` float64 [ckpt, chains, draws]
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor, nn

from grokinterp.analysis.llc.estimator import (
    LLCResult,
    LLCSettings,
    estimate_llc,
    estimate_llc_batched,
    require_devinterp,
)
from grokinterp.errors import UsageError
from grokinterp.models import Architecture, architecture
from grokinterp.progress import Progress
from grokinterp.storage import store
from grokinterp.storage.analysis_dir import LLC_FILE, SETTINGS_FILE, TRACES_FILE
from grokinterp.storage.run import open_run
from grokinterp.tasks import task_of

SAMPLER = "grokinterp.analysis.llc.sgld: devinterp 1.3.2's SGLD estimator, chains batched"


class AnswerLogits(nn.Module):
    """One checkpoint as a module for the sampler: its trained weights are the parameters, the
    frozen ones (zero biases, masks) buffers; `forward(pairs)` maps int64 pairs [n, 2] to the
    float32 logits at the answer [n, classes] through the family's fast forward."""

    def __init__(self, model: Architecture, state: dict[str, Tensor]):
        super().__init__()
        self.model = model
        self.names = list(model.param_shapes())
        trained = set(model.trained)
        for i, name in enumerate(self.names):
            value = state[name].detach().clone().float()
            if name in trained:
                self.register_parameter(f"p{i}", nn.Parameter(value))
            else:
                self.register_buffer(f"p{i}", value)

    def forward(self, pairs: Tensor) -> Tensor:
        params = {name: getattr(self, f"p{i}")[None] for i, name in enumerate(self.names)}
        return self.model.forward(params, pairs[None, :, 0], pairs[None, :, 1]).logits[0]


def answer_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The run's loss: mean cross-entropy at the answer, in float64."""
    return nn.functional.cross_entropy(logits.double(), labels)


def training_data(run) -> tuple[Tensor, Tensor]:
    """The run's training pairs [n, 2] and labels [n] (int64); UsageError when there are none."""
    return training_pairs(run.config, run.train_indices, run.path)


def training_pairs(cfg, train: Tensor, where) -> tuple[Tensor, Tensor]:
    """Pairs [n, 2] and labels [n] (int64) of the grid indices `train` of the config's task;
    UsageError naming `where` when there are none."""
    if len(train) == 0:
        raise UsageError(f"{where}: the run has no training pairs left; the LLC needs them")
    task = task_of(cfg)
    n = task.n_elements
    return torch.stack([train // n, train % n], dim=1), task.labels[task.positions(train)]


def llc_of_state(
    cfg,
    state: dict[str, Tensor],
    data: tuple[Tensor, Tensor],
    settings: LLCSettings,
    acceptance: bool = False,
) -> LLCResult:
    """The LLC of one checkpoint's weights on `data` (pairs, labels): the chains batched
    through the family's fast forward (grokinterp.analysis.llc.sgld); through devinterp's own
    sampler when `acceptance` (its MALA acceptance rate) is asked for. Both give the same
    estimate."""
    model = architecture(cfg)
    if acceptance:
        module = AnswerLogits(model, state)
        return estimate_llc(module, *data, answer_loss, settings, acceptance=True)
    pairs, labels = data
    trained = set(model.trained)
    start = {n: state[n].detach().float() for n in model.param_shapes() if n in trained}
    frozen = {n: state[n].float() for n in model.param_shapes() if n not in trained}

    def loss_of(params: dict[str, Tensor], index: Tensor) -> Tensor:
        runs = next(iter(params.values())).shape[0]
        every = params | {n: v[None].expand(runs, *v.shape) for n, v in frozen.items()}
        batch = pairs[index]
        a, b = batch[None, :, 0].expand(runs, -1), batch[None, :, 1].expand(runs, -1)
        logits = model.forward(every, a, b).logits.double()  # [runs, B, classes]
        target = labels[index].repeat(runs)
        each = nn.functional.cross_entropy(logits.flatten(0, 1), target, reduction="none")
        return each.view(runs, -1).mean(dim=1)

    return estimate_llc_batched(loss_of, start, len(labels), settings)


def llc_run(
    run_dir: str | Path, out_dir: str | Path, settings: LLCSettings, progress: bool = True
) -> Path:
    """Estimate the LLC of every complete checkpoint and write llc.csv, llc.json and the traces
    into `out_dir`. Incremental: a checkpoint estimated before, in `out_dir`, with the same
    settings, the same run config and split and the same checkpoint digest keeps its row and
    traces; only the others are estimated (all of them when the settings change). UsageError
    (nothing written) for bad settings, a missing devinterp or a run without training pairs."""
    settings.validate()
    require_devinterp()
    run = open_run(run_dir)
    data = training_data(run)
    series = store.list_checkpoints(run.path)
    if not series:
        raise UsageError(f"{run.path / store.CHECKPOINT_DIR}: no checkpoints to estimate")
    out = Path(out_dir)
    digests = {epoch: store.checkpoint_digest(path) for epoch, path in series}
    identity = _identity(run, settings)
    done = _previous(out, identity, digests)
    todo = [(epoch, path) for epoch, path in series if epoch not in done]
    bar = Progress(len(todo), enabled=progress, unit="checkpoint")
    for count, (epoch, path) in enumerate(todo, start=1):
        state, _, _ = store.load_checkpoint(path)
        result = llc_of_state(run.config, state, data, settings)
        done[epoch] = (_row(epoch, result, settings.chains), torch.from_numpy(result.loss_trace))
        bar.update(count, lambda epoch=epoch: f"epoch {epoch}")
    bar.close(lambda: f"LLC of {len(todo)} checkpoints ({len(series) - len(todo)} kept)")
    epochs = [epoch for epoch, _ in series]
    nbeta = settings.nbeta_for(min(settings.batch_size, len(data[1])))
    record = identity | {
        "settings": settings.to_dict() | {"nbeta_used": nbeta},
        "devinterp": _devinterp_version(),
        "n_train": len(data[1]),
        "sampled_parameters": list(architecture(run.config).trained),
        "loss": "float64 cross-entropy at the answer, mean over a batch of training pairs",
        "checkpoint_digests": {str(epoch): digests[epoch] for epoch in epochs},
    }
    table = pd.DataFrame([done[epoch][0] for epoch in epochs])
    arrays = {
        "epochs": torch.tensor(epochs, dtype=torch.int64),
        "loss_trace": torch.stack([done[epoch][1] for epoch in epochs]),
    }
    out.mkdir(parents=True, exist_ok=True)
    store.atomic_write(out / LLC_FILE, table.to_csv(index=False).encode())
    store.atomic_write(out / TRACES_FILE, save(arrays))
    store.atomic_write(out / SETTINGS_FILE, (json.dumps(record, indent=1) + "\n").encode())
    return out


def llc_is_current(run_dir: str | Path, out_dir: str | Path, settings: LLCSettings) -> bool:
    """True when `out_dir` holds the LLC of exactly the run's complete checkpoints, each
    estimated with `settings` (so `llc_run` would estimate nothing and change nothing)."""
    run = open_run(run_dir)
    digests = {
        epoch: store.checkpoint_digest(path) for epoch, path in store.list_checkpoints(run.path)
    }
    kept = _previous(Path(out_dir), _identity(run, settings), digests)
    if not digests or set(kept) != set(digests):
        return False
    return load_llc(out_dir)["epoch"].tolist() == sorted(digests)


def _identity(run, settings: LLCSettings) -> dict:
    """What an estimate depends on besides the checkpoint: settings, run config and split,
    sampler."""
    from grokinterp.storage.analysis_dir import run_fingerprint

    return {
        "settings": settings.to_dict(),
        "run_fingerprint": run_fingerprint(run.config, run.train_indices),
        "sampler": SAMPLER,
    }


def _previous(out: Path, identity: dict, digests: dict) -> dict[int, tuple[dict, Tensor]]:
    """{epoch: (row, loss trace)} of the earlier estimates in `out` that still hold: same
    settings, run and sampler, and the checkpoint's digest unchanged (a checkpoint without a
    digest is estimated again); empty when there are none or the files do not agree."""
    try:
        record = json.loads((out / SETTINGS_FILE).read_text())
        table = load_llc(out)
        traces = load_file(out / TRACES_FILE)
    except (OSError, ValueError, SafetensorError):
        return {}
    stored = {key: record.get(key) for key in identity}
    stored["settings"] = {k: v for k, v in (stored["settings"] or {}).items() if k != "nbeta_used"}
    if table is None or stored != identity:
        return {}
    if traces["epochs"].tolist() != table["epoch"].tolist():
        return {}
    recorded = record.get("checkpoint_digests", {})
    kept = {}
    for i, row in enumerate(table.to_dict("records")):
        epoch = int(row["epoch"])
        if digests.get(epoch) and recorded.get(str(epoch)) == digests[epoch]:
            kept[epoch] = (row | {"epoch": epoch}, traces["loss_trace"][i])
    return kept


def _row(epoch: int, result: LLCResult, chains: int) -> dict:
    ok = result.llc_mean is not None
    row = {
        "epoch": epoch,
        "llc_mean": result.llc_mean,
        "llc_std": result.llc_std,
        "init_loss": result.init_loss if ok else None,
        "drift": result.drift if ok else None,
        "status": result.status,
    }
    row |= {f"llc_chain{c}": result.per_chain[c] if ok else None for c in range(chains)}
    return row


def _devinterp_version() -> str:
    from importlib.metadata import version

    return version("devinterp")


def load_llc(analysis_dir: str | Path) -> pd.DataFrame | None:
    """llc.csv of an analysis directory, or None when the LLC was not estimated."""
    path = Path(analysis_dir) / LLC_FILE
    return pd.read_csv(io.StringIO(path.read_text())) if path.is_file() else None


def calibrate(
    run_dir: str | Path,
    lrs: list[float],
    localizations: list[float],
    base: LLCSettings,
    epoch: int | None = None,
) -> pd.DataFrame:
    """The LLC of one checkpoint (default: the last) at every step size x localisation, with the
    chains' spread, the within-chain drift and the MALA acceptance rate; `stable` when the
    estimate is finite and non-negative and its drift is under a tenth of it."""
    require_devinterp()
    settings = [
        replace(base, lr=lr, localization=g).validate() for lr in lrs for g in localizations
    ]
    run = open_run(run_dir)
    data = training_data(run)
    state = run.state_dict(epoch=epoch)
    rows = []
    for s in settings:
        result = llc_of_state(run.config, state, data, s, acceptance=True)
        ok = result.llc_mean is not None
        stable = ok and result.llc_mean >= 0 and abs(result.drift) <= 0.1 * abs(result.llc_mean)
        rows.append(
            {
                "lr": s.lr,
                "localization": s.localization,
                "llc_mean": result.llc_mean,
                "llc_std": result.llc_std,
                "drift": result.drift if ok else None,
                "acceptance": result.acceptance if ok else None,
                "status": result.status,
                "stable": bool(stable),
            }
        )
    return pd.DataFrame(rows)
