"""Measure every checkpoint of a run: `grokinterp analyze --ckpt-dir RUN`.

Writes into the analysis directory (default `analyses/<run-name>/`):
- `measures.csv`: one row per checkpoint, one column per measure (see COLUMNS_DOC);
- `neurons.safetensors`: `epochs` int64 [ckpt], `dominant_frequency` int64 [ckpt, d_mlp],
  `fve` float32 [ckpt, d_mlp], `final_fve_by_frequency` float32 [d_mlp, n_freq];
- `summary.json`: key frequencies, phases, final losses, neuron clusters (see `Summary`).
The key frequencies come from the last checkpoint; restricted and excluded loss use them at every
checkpoint. Re-running analyses only checkpoints not yet in the table, unless the key frequencies
changed, in which case everything is measured again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from grokinterp import data, store
from grokinterp.config import RunConfig
from grokinterp.engine import last_position
from grokinterp.errors import UsageError
from grokinterp.fourier import frequencies
from grokinterp.measures import embedding, losses, neurons, phases, weights
from grokinterp.measures.logits import logit_fve
from grokinterp.params import param_shapes
from grokinterp.progress import Progress
from grokinterp.run import open_run

DEFAULT_ANALYSES_DIR = Path("analyses")
MEASURES_FILE, NEURONS_FILE, SUMMARY_FILE = "measures.csv", "neurons.safetensors", "summary.json"
CHUNK = 8
"""Checkpoints measured together (memory ~ CHUNK * p^2 * d_mlp floats)."""

COLUMNS_DOC = """\
epoch                   checkpoint epoch
train_loss, test_loss, all_loss   cross-entropy (float64, nats) on the train, test and all pairs
train_acc, test_acc     accuracy
restricted_loss         loss on all pairs of the logits kept to the key-frequency directions
restricted_loss_test    the same on the test pairs
excluded_loss           loss on the train pairs with the key-frequency directions removed
logit_fve               share of logit variance explained by the key cos(w(a+b-c)) terms
weight_norm             sum of squared weights over all parameters
sq.<parameter>          sum of squares of one parameter (HookedTransformer name)
gini_W_E, gini_W_L      Gini coefficient of the per-frequency Fourier norms of W_E and W_L
W_E.k<k>, W_L.k<k>      Fourier norm of frequency k of W_E (number tokens) and of W_L
fve_share               share of neurons whose dominant frequency explains > 0.85 of variance
cluster.k<k>            number of such neurons whose dominant frequency is k"""


@dataclass(frozen=True)
class Summary:
    """The headline results of one analysed run (`summary.json`)."""

    run_name: str
    run_dir: str
    config: dict
    key_frequencies: list[int]
    key_frequency_rule: str
    phases: dict[str, int | None]
    phase_rule: str
    final_train_loss: float
    final_test_loss: float
    final_restricted_loss: float
    final_excluded_loss: float
    logit_fve_final: float
    fve_threshold: float
    fve_share: float
    cluster_sizes: dict[str, int]
    """Neurons with FVE above the threshold, by dominant frequency (keys are str(k))."""
    unexplained_neurons: int
    excluded_loss_by_frequency: dict[str, float]
    """Train loss with one key frequency's directions removed, final checkpoint."""
    n_checkpoints: int
    last_epoch: int
    checks: dict
    """The paper's qualitative claims, measured (`measures.phases.paper_checks`)."""

    @classmethod
    def load(cls, analysis_dir: str | Path) -> Summary:
        """The summary of an analysis directory."""
        return cls.read(Path(analysis_dir) / SUMMARY_FILE)

    @classmethod
    def read(cls, path: str | Path) -> Summary:
        """A summary JSON file (`summary.json`, or a copy such as analyses/seeds/*.json)."""
        try:
            raw = json.loads(Path(path).read_text())
            return cls(**{f.name: raw[f.name] for f in fields(cls)})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not a readable analysis summary ({exc})") from None


def load_measures(analysis_dir: str | Path) -> pd.DataFrame:
    """The measures table of an analysed run, one row per checkpoint."""
    path = Path(analysis_dir) / MEASURES_FILE
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable measures table ({exc})") from None


def measure_checkpoints(
    cfg: RunConfig, states: list[dict[str, torch.Tensor]], train: torch.Tensor, keys: list[int]
) -> tuple[pd.DataFrame, torch.Tensor]:
    """Every per-checkpoint measure of a batch of state dicts of one run.

    Returns the table rows (no epoch column) and the neurons' FVE by frequency
    [ckpt, d_mlp, n_freq].
    """
    p = cfg.p
    floats = {name: torch.stack([s[name] for s in states]) for name in param_shapes(cfg)}
    a, b = data.pair_operands(p)
    with torch.no_grad():
        out = last_position(floats, a.expand(len(states), -1), b.expand(len(states), -1))
    labels = data.labels(cfg)
    test = data.test_indices(p, train)
    directions = losses.key_directions(p, keys)
    restricted = losses.restricted_logits(out.logits, directions)
    excluded = losses.excluded_logits(out.logits, directions)[:, train]
    columns = {
        "train_loss": losses.cross_entropy(out.logits[:, train], labels[train]),
        "test_loss": losses.cross_entropy(out.logits[:, test], labels[test]),
        "all_loss": losses.cross_entropy(out.logits, labels),
        "train_acc": losses.accuracy(out.logits[:, train], labels[train]),
        "test_acc": losses.accuracy(out.logits[:, test], labels[test]),
        "restricted_loss": losses.cross_entropy(restricted, labels),
        "restricted_loss_test": losses.cross_entropy(restricted[:, test], labels[test]),
        "excluded_loss": losses.cross_entropy(excluded, labels[train]),
        "logit_fve": logit_fve(out.logits, p, keys),
    }
    squares = weights.sum_of_squares(floats)
    columns["weight_norm"] = sum(squares.values())
    columns |= {f"sq.{name}": value for name, value in squares.items()}
    W_E = embedding.embedding_norms(floats["embed.W_E"], p)
    W_L = embedding.fourier_frequency_norms(
        embedding.neuron_logit_map(floats["blocks.0.mlp.W_out"], floats["unembed.W_U"])
    )
    columns |= {"gini_W_E": weights.gini(W_E), "gini_W_L": weights.gini(W_L)}
    fve_by_frequency = neurons.frequency_fve(out.post, p)
    _, fve, counts = neurons.cluster_sizes(fve_by_frequency)
    columns["fve_share"] = (fve > neurons.FVE_THRESHOLD).double().mean(dim=1)
    for k in frequencies(p):
        columns |= {f"W_E.k{k}": W_E[:, k - 1], f"W_L.k{k}": W_L[:, k - 1]}
    columns |= {f"cluster.k{k}": counts[:, k - 1] for k in frequencies(p)}
    return pd.DataFrame({name: value.numpy() for name, value in columns.items()}), fve_by_frequency


def excluded_loss_by_frequency(
    cfg: RunConfig, state: dict[str, torch.Tensor], train: torch.Tensor, keys: list[int]
) -> dict[str, float]:
    """Train loss with the directions of one key frequency removed, for each key frequency."""
    floats = {name: state[name][None] for name in param_shapes(cfg)}
    a, b = data.pair_operands(cfg.p)
    with torch.no_grad():
        logits = last_position(floats, a[None], b[None]).logits
    labels = data.labels(cfg)[train]
    result = {}
    for k in keys:
        excluded = losses.excluded_logits(logits, losses.key_directions(cfg.p, [k]))[:, train]
        result[str(k)] = float(losses.cross_entropy(excluded, labels))
    return result


def _load_series(run_dir: Path, cfg: RunConfig, series: list[tuple[int, Path]]):
    for epoch, path in series:
        state, stored_epoch, stored_cfg = store.load_checkpoint(path)
        if stored_cfg.replace(epochs=cfg.epochs) != cfg:  # a run may be trained on longer
            raise UsageError(f"{path}: checkpoint of a different run config than {run_dir}")
        if stored_epoch != epoch:
            raise UsageError(f"{path}: file name says epoch {epoch}, metadata says {stored_epoch}")
        yield epoch, state


@dataclass
class _Measured:
    """Measured checkpoints: table rows and per-neuron dominant frequency and FVE, by epoch."""

    table: pd.DataFrame
    dominant: torch.Tensor
    fve: torch.Tensor

    @classmethod
    def empty(cls, d_mlp: int) -> _Measured:
        table = pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        return cls(table, torch.empty(0, d_mlp, dtype=torch.int64), torch.empty(0, d_mlp))

    def extend(self, other: _Measured) -> _Measured:
        table = pd.concat([self.table, other.table], ignore_index=True)
        order = torch.as_tensor(np.argsort(table["epoch"].to_numpy(), kind="stable"))
        return _Measured(
            table.iloc[order.numpy()].reset_index(drop=True),
            torch.cat([self.dominant, other.dominant])[order],
            torch.cat([self.fve, other.fve])[order],
        )


def analyze_run(
    run_dir: str | Path, out_dir: str | Path | None = None, progress: bool = True
) -> Path:
    """Measure every complete checkpoint of a run and write the analysis directory."""
    run = open_run(run_dir)
    cfg, train = run.config, run.train_indices
    series = store.list_checkpoints(run.path)
    if not series:
        raise UsageError(f"{run.path / store.CHECKPOINT_DIR}: no checkpoints to analyse")
    out = Path(out_dir) if out_dir is not None else DEFAULT_ANALYSES_DIR / run.name
    final_epoch, final_state = next(_load_series(run.path, cfg, series[-1:]))
    final_norms = embedding.embedding_norms(final_state["embed.W_E"][None], cfg.p)[0]
    keys = embedding.key_frequencies(final_norms)

    measured, final_fve = _previous(out, keys, cfg.d_mlp)
    done = set(measured.table["epoch"].tolist())
    todo = [(epoch, path) for epoch, path in series if epoch not in done]
    bar = Progress(len(todo), enabled=progress, unit="checkpoint")
    for start in range(0, len(todo), CHUNK):
        chunk = list(_load_series(run.path, cfg, todo[start : start + CHUNK]))
        table, fve_by_frequency = measure_checkpoints(cfg, [s for _, s in chunk], train, keys)
        table.insert(0, "epoch", [epoch for epoch, _ in chunk])
        dominant, fve, _ = neurons.cluster_sizes(fve_by_frequency)
        measured = measured.extend(_Measured(table, dominant, fve))
        if chunk[-1][0] == final_epoch:
            final_fve = fve_by_frequency[-1]
        bar.update(start + len(chunk), partial(str, f"epoch {chunk[-1][0]}"))
    bar.close(lambda: f"{len(series)} checkpoints measured")

    summary = _summarise(run, measured.table, final_fve, keys, final_state, train)
    _write(out, measured, final_fve, summary)
    return out


def _previous(out: Path, keys: list[int], d_mlp: int) -> tuple[_Measured, torch.Tensor | None]:
    """What an earlier analysis with the same key frequencies measured, or nothing."""
    try:
        if Summary.load(out).key_frequencies != keys:
            return _Measured.empty(d_mlp), None
        stored = load_file(out / NEURONS_FILE)
        table = load_measures(out)
        if not torch.equal(stored["epochs"], torch.tensor(table["epoch"].to_numpy())):
            return _Measured.empty(d_mlp), None
    except (UsageError, OSError, KeyError, SafetensorError):
        return _Measured.empty(d_mlp), None
    measured = _Measured(table, stored["dominant_frequency"], stored["fve"])
    return measured, stored["final_fve_by_frequency"]


def _summarise(run, table: pd.DataFrame, final_fve, keys, final_state, train) -> Summary:
    cfg = run.config
    final = table.iloc[-1]
    epochs = table["epoch"].to_numpy()
    located = phases.locate_phases(
        epochs, table["train_acc"].to_numpy(), table["test_loss"].to_numpy()
    )
    clusters = {
        str(k): int(final[f"cluster.k{k}"]) for k in frequencies(cfg.p) if final[f"cluster.k{k}"]
    }
    return Summary(
        run_name=run.name,
        run_dir=str(run.path),
        config=asdict(cfg),
        key_frequencies=keys,
        key_frequency_rule=(
            f"frequencies holding at least {embedding.KEY_SHARE:.0%} of the squared Fourier norm "
            "of the final embedding W_E (number tokens, constant row excluded)"
        ),
        phases=located,
        phase_rule=phases.RULE,
        final_train_loss=float(final["train_loss"]),
        final_test_loss=float(final["test_loss"]),
        final_restricted_loss=float(final["restricted_loss"]),
        final_excluded_loss=float(final["excluded_loss"]),
        logit_fve_final=float(final["logit_fve"]),
        fve_threshold=neurons.FVE_THRESHOLD,
        fve_share=float(final["fve_share"]),
        cluster_sizes=clusters,
        unexplained_neurons=cfg.d_mlp - sum(clusters.values()),
        excluded_loss_by_frequency=excluded_loss_by_frequency(cfg, final_state, train, keys),
        n_checkpoints=len(table),
        last_epoch=int(epochs[-1]),
        checks=phases.paper_checks(table, located),
    )


def _write(out: Path, measured: _Measured, final_fve: torch.Tensor, summary: Summary) -> None:
    """Write the three files, each atomically; nothing is written before all is measured."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        "epochs": torch.tensor(measured.table["epoch"].to_numpy(), dtype=torch.int64),
        "dominant_frequency": measured.dominant.to(torch.int64).contiguous(),
        "fve": measured.fve.to(torch.float32).contiguous(),
        "final_fve_by_frequency": final_fve.to(torch.float32).contiguous(),
    }
    store.atomic_write(out / NEURONS_FILE, save(tensors))
    csv = measured.table.to_csv(index=False, float_format="%.10g")
    store.atomic_write(out / MEASURES_FILE, csv.encode())
    store.atomic_write(out / SUMMARY_FILE, json.dumps(asdict(summary), indent=2).encode())
