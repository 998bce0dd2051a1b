"""The analysis directory `analyses/<run>/`: its one reader and one writer.

    measures.csv         one row per checkpoint, one column per measure (their registry:
                         `grokinterp.analysis.columns.COLUMNS`, rendered as docs/columns.md)
    neurons.safetensors  `epochs` int64 [ckpt], `dominant_frequency` int64 [ckpt, neurons] (the
                         dominant component's 1-based position in the basis spectrum: the
                         frequency k for the Fourier and discrete-log bases), `fve` float32
                         [ckpt, neurons], `final_fve_by_frequency` float32 [neurons, spectrum]
                         (absent when the task has no basis); neurons = hidden layers * d_mlp,
                         layer 0's neurons first
    summary.json         `Summary`: task, basis, key components, phases, final values, checks
    final_views.safetensors  the last checkpoint's views that the report draws (attention,
                         logit fit, spectra; format in `grokinterp.storage.final_views`)
    indicators.csv       one row per checkpoint, one column per early-warning indicator
                         (`grokinterp indicators`, optional; INDICATOR_COLUMNS_DOC)

measures.csv, neurons.safetensors, summary.json and final_views.safetensors are committed
together, only after everything has been measured (`grokinterp.storage.analysis_dir`: a killed
commit leaves the old files or, once the next reader completes it, the new ones; never a mix).
Summaries of format 1 (addition only, before tasks and bases) are read as addition in the Fourier
basis.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from grokinterp.config import FORMAT_VERSION as CONFIG_VERSION
from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage.analysis_dir import (
    FINAL_VIEWS_FILE,
    INDICATORS_FILE,
    MEASURES_FILE,
    NEURONS_FILE,
    SUMMARY_FILE,
    commit,
    settle,
)
from grokinterp.storage.final_views import FinalViews, load_final_views
from grokinterp.storage.store import atomic_write

FORMAT_VERSION = 2
DEPRECATED_KEY_FREQUENCIES = (
    "the format-1 name of key_components (written when the basis's components are "
    "frequencies, else []); read key_components: key_frequencies goes in format 3"
)

INDICATOR_COLUMNS_DOC = """\
epoch                   checkpoint epoch
train_loss, test_loss, train_acc, test_acc   the run's metrics at that epoch
weight_norm             sum of squared weights over all parameters
spectral_entropy        normalised spectral entropy of hidden layer 0's covariance, [0, 1]
lar_W_L                 log-alignment ratio of the neuron-to-logit map on its neurons, <= 1
fiedler                 Fiedler value of the MLP's |weight| graph, >= 0
head_similarity         mean pairwise cosine of the heads' patterns at `=`, [0, 1] (attention)
entropy_spread          std over heads of their mean attention entropy (nats) (attention)
<name>.ac1, <name>.var  rolling lag-1 autocorrelation and variance of an indicator over 8
                        checkpoints, and of log(train loss) over 100 epochs (`train_loss.*`)
restricted_loss, excluded_loss, gini_W_E, gini_W_L, fve_share   copied from measures.csv
                        when the analysis has one (restricted/excluded: last checkpoint's keys)
Definitions and sources: grokinterp.prediction.indicators."""


def write_indicators(out: Path, table: pd.DataFrame) -> None:
    """Write indicators.csv atomically into the analysis directory `out`."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / INDICATORS_FILE, _table_bytes(table))


def load_indicators(analysis_dir: str | Path) -> pd.DataFrame:
    """The indicators table of an analysis directory (UsageError when missing or unreadable)."""
    return _read_table(Path(analysis_dir) / INDICATORS_FILE, "indicators")


def layer_prefix(layer: int) -> str:
    """The column prefix of hidden layer `layer`'s measures: none for the first (the columns of
    one-layer runs), `L1.`, `L2.`, ... after it."""
    return f"L{layer}." if layer else ""


CLOCK_PIZZA = "gradient symmetricity and distance irrelevance (clock or pizza)"
"""The `not_applicable` name of Zhong et al.'s two diagnostics."""
CLOCK_PIZZA_COLUMNS = ("gradient_symmetricity", "distance_irrelevance")

BASIS_MEASURES = (
    "restricted and excluded loss",
    "logit FVE",
    "key components",
    "embedding and W_L spectra",
    "neuron clusters",
)


@dataclass(frozen=True)
class Summary:
    """The headline results of one analysed run (`summary.json`)."""

    run_name: str
    run_dir: str
    """Where the run directory was when analysed (as given, and resolved in `run_dir_abs`)."""
    config: dict
    task: dict
    """name, formula, commutative, n_pairs."""
    basis: dict | None
    """name, title, kind (`frequency` or `irrep`); None when the task has no known basis."""
    key_components: list
    """Keys of the key components (frequencies as ints); [] without a basis, and [] when the
    spectrum is flat (`key_component_note`)."""
    key_frequency_rule: str | None
    not_applicable: dict[str, str]
    """Measures that do not apply to this run, with the reason."""
    phases: dict[str, int | None]
    phase_rule: str
    final_train_loss: float
    final_test_loss: float
    final_restricted_loss: float | None
    final_excluded_loss: float | None
    logit_fve_final: float | None
    fve_threshold: float
    fve_share: float | None
    cluster_sizes: dict[str, int]
    """Neurons with FVE above the threshold, by dominant component (keys are str(key))."""
    unexplained_neurons: int | None
    excluded_loss_by_component: dict[str, float]
    """Train loss with one key component's directions removed, final checkpoint."""
    n_checkpoints: int
    last_epoch: int
    checks: dict
    """The paper's qualitative claims, measured (`measures.phases.paper_checks`)."""
    phase_note: str | None = None
    """Why phase boundaries are null, when some are."""
    embedding_gini: dict[str, float] = field(default_factory=dict)
    """Gini of the final embedding's spectrum in each basis of the elements (e.g. `fourier` and
    `dlog` for residues): a sparse spectrum in the task's basis, a dense one in the other."""
    checkpoint_digests: dict[str, str] = field(default_factory=dict)
    """epoch -> the checkpoint's digest, for every measured row (reuse only when unchanged)."""
    run_fingerprint: str = ""
    """Digest of the run's config and split (`grokinterp.storage.analysis_dir.run_fingerprint`)."""
    run_dir_abs: str = ""
    layers: list[dict] = field(default_factory=list)
    """Per hidden layer at the final checkpoint: `layer`, `prefix` (of its columns),
    `neuron_logit_map` (whether it writes to the logits directly), `fve_share`, `cluster_sizes`,
    `unexplained_neurons`. The top-level cluster fields repeat layer 0's."""
    key_component_note: str | None = None
    """Why key_components is empty though components pass the share rule: the spectrum is flat
    (`measures.embedding.flat_spectrum`); None otherwise."""
    loss_components: list | None = None
    """The components restricted_loss, excluded_loss and excluded_loss_by_component keep or
    remove: key_components, or for a flat spectrum those the share rule picks (then those
    measures are not meaningful). None in summaries written before the field: key_components."""
    format_version: int = FORMAT_VERSION
    path: Path | None = field(default=None, compare=False)
    """The analysis directory it was read from or written to (not stored in the file); None for a
    summary read from a file of its own (`read`)."""

    @property
    def measured_components(self) -> list:
        """The components the loss measures used (`loss_components`)."""
        return self.key_components if self.loss_components is None else self.loss_components

    @property
    def key_frequencies(self) -> list:
        """The key components when the basis's components are frequencies, else []."""
        return self.key_components if self.basis and self.basis["kind"] == "frequency" else []

    @classmethod
    def load(cls, analysis_dir: str | Path) -> Summary:
        """The summary of an analysis directory."""
        settle(analysis_dir)
        return replace(cls.read(Path(analysis_dir) / SUMMARY_FILE), path=Path(analysis_dir))

    @classmethod
    def read(cls, path: str | Path) -> Summary:
        """A summary JSON file (`summary.json`, or a copy such as analyses/seeds/*.json)."""
        try:
            raw = json.loads(Path(path).read_text())
        except OSError:
            raise UsageError(f"{path}: missing; run `grokinterp analyze` first") from None
        except ValueError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc})") from None
        try:
            if raw.get("format_version", 1) == 1:
                raw = _upgrade_format_1(raw)
            names = {f.name for f in fields(cls)} - {"path"}
            return cls(**{name: raw[name] for name in names if name in raw})
        except (AttributeError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not a readable analysis summary ({exc})") from None

    def to_bytes(self) -> bytes:
        """summary.json's bytes: the fields, and for format 2 only the format-1 name
        `key_frequencies` (readers of the raw JSON that still use it), flagged under
        `deprecated`."""
        raw = {**asdict(self), "key_frequencies": self.key_frequencies}
        del raw["path"]
        raw["deprecated"] = {"key_frequencies": DEPRECATED_KEY_FREQUENCIES}
        return json.dumps(raw, indent=2).encode()

    def write(self, analysis_dir: Path) -> None:
        """Replace summary.json alone (atomically), keeping the other files."""
        commit(Path(analysis_dir), {SUMMARY_FILE: self.to_bytes()})


def _upgrade_format_1(raw: dict) -> dict:
    """A format-1 summary (modular addition, Fourier basis) in today's fields."""
    p = raw["config"]["p"]
    raw = dict(raw)
    raw["key_components"] = raw.pop("key_frequencies")
    raw["excluded_loss_by_component"] = raw.pop("excluded_loss_by_frequency")
    raw["task"] = {"name": "add", "formula": f"(a + b) mod {p}", "commutative": True}
    raw["task"]["n_pairs"] = p * p
    title = f"additive Fourier basis of Z_{p}"
    raw["basis"] = {"name": "fourier", "title": title, "kind": "frequency"}
    raw["not_applicable"] = {}
    for name in ("final_restricted_loss", "final_excluded_loss", "logit_fve_final", "fve_share"):
        raw.setdefault(name, None)
    raw.setdefault("checks", {})
    return raw


def load_measures(analysis_dir: str | Path) -> pd.DataFrame:
    """The measures table of an analysed run, one row per checkpoint."""
    settle(analysis_dir)
    return _read_table(Path(analysis_dir) / MEASURES_FILE, "measures")


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable {what} table ({exc})") from None


def load_neurons(analysis_dir: str | Path) -> dict[str, torch.Tensor]:
    """The arrays of neurons.safetensors ({} when the task has no basis and there is no file)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    settle(analysis_dir)
    path = Path(analysis_dir) / NEURONS_FILE
    if not path.exists():
        return {}
    try:
        return load_file(path)
    except (OSError, SafetensorError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None


def _table_bytes(table: pd.DataFrame) -> bytes:
    """A table's CSV bytes: 10 significant digits."""
    return table.to_csv(index=False, float_format="%.10g").encode()


def write_analysis(
    out: Path,
    table: pd.DataFrame,
    neurons: dict[str, torch.Tensor],
    summary: Summary,
    views: FinalViews,
    remove: tuple[str, ...] = (),
) -> None:
    """Commit the four files together (no neurons file without a basis); `remove` names other
    files of the directory that the commit deletes (those of a replaced analysis)."""
    from safetensors.torch import save

    files = {
        MEASURES_FILE: _table_bytes(table),
        SUMMARY_FILE: summary.to_bytes(),
        FINAL_VIEWS_FILE: views.to_bytes(),
    }
    if neurons:
        files[NEURONS_FILE] = save({k: v.contiguous() for k, v in neurons.items()})
    commit(out, files, remove=(*remove, NEURONS_FILE))


# ---- the checked reader of the report -----------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    """The files of an analysis directory, read and checked against each other."""

    path: Path
    summary: Summary
    config: RunConfig
    measures: pd.DataFrame
    neurons: dict[str, np.ndarray]
    views: FinalViews | None
    """None for an analysis written before final_views.safetensors existed."""
    foreign_fields: frozenset[str]
    """The config's fields of other model families: kept in the config, never read by this run."""

    @property
    def run_name(self) -> str:
        return Path(self.summary.run_name or "").name or self.path.resolve().name


def _fail(path: Path, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}")


def _check_summary(path: Path, summary: Summary) -> tuple[RunConfig, list[str] | None]:
    """The run config, and the spectrum's component names (None without a basis)."""
    ends = [summary.phases.get(k) for k in ("memorization_end", "circuit_formation_end")]
    ends.append(summary.phases.get("cleanup_end"))
    known = [end for end in ends if end is not None]
    if not all(isinstance(end, int) for end in known) or known != sorted(known):
        raise _fail(path, f"`phases` must hold increasing integer epochs or null, got {ends}")
    if not isinstance(summary.config, dict):
        raise _fail(path, "`config` missing or not a dict")
    try:
        config = RunConfig.from_dict({"format_version": CONFIG_VERSION, **summary.config})
    except UsageError as exc:
        raise _fail(path, f"bad `config`: {exc}") from None
    keys = summary.key_components
    if summary.basis is not None:
        from grokinterp.tasks import task_of

        basis = task_of(config).basis(summary.basis.get("name"))
        known = [c.key for c in basis.spectrum]
        if (
            not isinstance(keys, list)
            or len(set(map(str, keys))) != len(keys)
            or any(key not in known for key in keys)
        ):
            allowed = "1..(p-1)/2" if basis.kind == "frequency" else ", ".join(map(str, known))
            raise _fail(path, f"key {basis.kind}s must be distinct, in {allowed}; got {keys}")
        return config, [c.name for c in basis.spectrum]
    return config, None


def _check_measures(
    path: Path, measures: pd.DataFrame, spectrum: list[str] | None, config: RunConfig
) -> pd.DataFrame:
    """Checks the columns, with those of each spectrum component name and hidden layer when
    there is a basis."""
    from grokinterp.models import architecture

    needed = ["epoch", "train_loss", "test_loss", "weight_norm"]
    if spectrum is not None:
        needed += ["restricted_loss", "restricted_loss_test", "excluded_loss", "logit_fve"]
        needed += ["gini_W_E", *(f"W_E.{name}" for name in spectrum)]
        model = architecture(config)
        for layer in range(model.hidden_layers):
            prefix = layer_prefix(layer)
            needed += [f"{prefix}fve_share", *(f"{prefix}cluster.{n}" for n in spectrum)]
            if layer in model.direct_layers:
                needed += [f"{prefix}gini_W_L", *(f"{prefix}W_L.{n}" for n in spectrum)]
    missing = [column for column in needed if column not in measures.columns]
    if missing:
        raise _fail(path, f"missing columns {', '.join(missing[:5])}" + " ..." * (len(missing) > 5))
    if measures.empty:
        raise _fail(path, "holds no checkpoint rows")
    if not all(pd.api.types.is_numeric_dtype(measures[c]) for c in measures.columns):
        raise _fail(path, "holds non-numeric values")
    epochs = measures["epoch"].to_numpy()
    if np.any(epochs != np.round(epochs)) or np.any(np.diff(epochs) <= 0):
        raise _fail(path, "`epoch` must be increasing integers")
    return measures.assign(epoch=measures["epoch"].astype(np.int64))


def _check_neurons(path: Path, arrays: dict, n_ckpt: int, d_mlp: int, n_spec: int) -> dict:
    shapes = {
        "epochs": (n_ckpt,),
        "dominant_frequency": (n_ckpt, d_mlp),
        "fve": (n_ckpt, d_mlp),
        "final_fve_by_frequency": (d_mlp, n_spec),
    }
    for name, shape in shapes.items():
        if name not in arrays:
            raise _fail(path, f"no array `{name}`" if arrays else "missing")
        if tuple(arrays[name].shape) != shape:
            raise _fail(path, f"`{name}` has shape {tuple(arrays[name].shape)}, expected {shape}")
    return {name: arrays[name].numpy() for name in shapes}


def load_analysis(analysis_dir: str | Path) -> Analysis:
    """Read an analysis directory; any missing or malformed file raises UsageError naming it."""
    path = Path(analysis_dir)
    if not path.is_dir():
        raise UsageError(f"{path}: no such analysis directory; run `grokinterp analyze` first")
    summary = Summary.load(path)
    config, spectrum = _check_summary(path / SUMMARY_FILE, summary)
    try:
        raw = pd.read_csv(path / MEASURES_FILE)
    except OSError:
        raise _fail(path / MEASURES_FILE, "missing; run `grokinterp analyze` first") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise _fail(path / MEASURES_FILE, f"not a readable CSV table ({exc})") from None
    measures = _check_measures(path / MEASURES_FILE, raw, spectrum, config)
    neurons: dict[str, Any] = {}
    if spectrum is not None:
        arrays = load_neurons(path)
        n_spec = len(spectrum)
        n_neurons = config.d_mlp * config.n_layers
        neurons = _check_neurons(path / NEURONS_FILE, arrays, len(measures), n_neurons, n_spec)
        if not np.array_equal(neurons["epochs"], measures["epoch"].to_numpy()):
            raise _fail(path / NEURONS_FILE, f"`epochs` differ from those of {MEASURES_FILE}")
    views = load_final_views(path)
    if views is not None and views.epoch != summary.last_epoch:
        raise _fail(
            path / FINAL_VIEWS_FILE,
            f"views of epoch {views.epoch}, not of the last one measured ({summary.last_epoch})",
        )
    from grokinterp.models import foreign_fields

    unread = frozenset(foreign_fields(config.model))
    return Analysis(path, summary, config, measures, neurons, views, unread)
