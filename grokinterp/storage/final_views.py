"""final_views.safetensors: the final model's views that the report draws, so that the report
reads the analysis directory alone (no checkpoint, no model). Computed by
`grokinterp.analysis.views` at the analysis's last checkpoint; committed with measures.csv and
summary.json (`grokinterp.storage.analysis_dir.commit`).

Tensors (absent when the view does not apply; `l` a layer with attention, 0 first):

    attention.L<l>      float32 [rows, head]  attention from `=` to a (averaged over b) in the
                                              task's basis restricted to a's operands, one column
                                              per head (Nanda et al. 2023, section 4.1)
    logit_fit.fitted    float32 [n]           the key kernels' fit of the centred logit
    logit_fit.centred   float32 [n]           the centred logit (nats) of a sample of (a, b, c)
    logit_fit.triples   int32   [n, 3]        (a, b, c) of each sampled logit
    logit_fit.correct   bool    [n]           whether c is the answer of (a, b)
    spectrum.<basis>    float32 [components]  norm of each component of W_E in an element basis

Metadata: one entry, `final_views`, a JSON object (one entry, so that the file's bytes do not
depend on the order safetensors writes its metadata in): `format_version`, `epoch` (the
checkpoint's), `attention_rows` (the basis rows' names), `logit_fit_fve` (the fit's fraction of
variance explained; absent without the fit), `spectra` (a list of {name, title, labels, gini}, in
order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Bool, Float, Int

from grokinterp.errors import UsageError
from grokinterp.storage.analysis_dir import FINAL_VIEWS_FILE

FORMAT_VERSION = 1
METADATA_KEY = "final_views"


@dataclass(frozen=True)
class Spectrum:
    """The final embedding W_E in one basis of the elements."""

    name: str
    title: str
    labels: list[str]
    """One per component, in spectrum order."""
    norms: Float[np.ndarray, " components"]
    gini: float
    """Gini coefficient of `norms`, in [0, 1]: near 1 when a few components hold the norm."""


@dataclass(frozen=True)
class LogitSample:
    """A sample of the final model's centred logits over (a, b, c) with their fit by the key
    components' kernels (Nanda et al. 2023, section 4.2)."""

    fitted: Float[np.ndarray, " n"]
    centred: Float[np.ndarray, " n"]
    triples: Int[np.ndarray, "n 3"]
    correct: Bool[np.ndarray, " n"]
    fve: float
    """Fraction of the variance of all centred logits (not only the sample's) that the fit
    explains."""


@dataclass(frozen=True)
class FinalViews:
    """The views of the model at checkpoint `epoch`."""

    epoch: int
    attention: list[Float[np.ndarray, "rows head"]] = field(default_factory=list)
    """Per layer with attention; [] for a family without attention or a task without a basis."""
    attention_rows: list[str] = field(default_factory=list)
    logit_fit: LogitSample | None = None
    """None for a task without a basis."""
    spectra: list[Spectrum] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The file's bytes (dtypes as in the module docstring)."""
        from safetensors.numpy import save

        tensors = {
            f"attention.L{layer}": np.ascontiguousarray(values, dtype=np.float32)
            for layer, values in enumerate(self.attention)
        }
        about = {
            "format_version": FORMAT_VERSION,
            "epoch": self.epoch,
            "attention_rows": self.attention_rows,
            "spectra": [
                {k: getattr(s, k) for k in ("name", "title", "labels", "gini")}
                for s in self.spectra
            ],
        }
        for spectrum in self.spectra:
            tensors[f"spectrum.{spectrum.name}"] = spectrum.norms.astype(np.float32)
        if (fit := self.logit_fit) is not None:
            tensors["logit_fit.fitted"] = fit.fitted.astype(np.float32)
            tensors["logit_fit.centred"] = fit.centred.astype(np.float32)
            tensors["logit_fit.triples"] = np.ascontiguousarray(fit.triples, dtype=np.int32)
            tensors["logit_fit.correct"] = fit.correct.astype(np.bool_)
            about["logit_fit_fve"] = fit.fve
        return save(tensors, {METADATA_KEY: json.dumps(about)})


def load_final_views(analysis_dir: str | Path) -> FinalViews | None:
    """The final views of an analysis directory; None when it has none (an analysis written
    before the file existed). UsageError naming the file when it is unreadable or inconsistent."""
    from safetensors import SafetensorError, safe_open

    path = Path(analysis_dir) / FINAL_VIEWS_FILE
    if not path.exists():
        return None
    try:
        with safe_open(path, "np") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        return _views(json.loads(metadata[METADATA_KEY]), tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable final-views file ({exc!r})") from None


def _views(about: dict, tensors: dict[str, np.ndarray]) -> FinalViews:
    """The FinalViews of a file's metadata object and tensors; ValueError where they disagree."""
    if int(about["format_version"]) > FORMAT_VERSION:
        raise ValueError(f"format {about['format_version']} is newer than this grokinterp's")
    rows = list(about["attention_rows"])
    attention = []
    while f"attention.L{len(attention)}" in tensors:
        values = tensors[f"attention.L{len(attention)}"]
        if values.ndim != 2 or values.shape[0] != len(rows):
            raise ValueError(
                f"attention.L{len(attention)} has shape {values.shape}, not [rows, head]"
            )
        attention.append(values)
    spectra = []
    for entry in about["spectra"]:
        norms = tensors[f"spectrum.{entry['name']}"]
        if norms.shape != (len(entry["labels"]),):
            raise ValueError(f"spectrum.{entry['name']} has shape {norms.shape}")
        spectra.append(Spectrum(norms=norms, **entry))
    fit = None
    if "logit_fit_fve" in about:
        parts = [
            tensors[f"logit_fit.{name}"] for name in ("fitted", "centred", "triples", "correct")
        ]
        n = len(parts[0])
        if any(part.shape[0] != n for part in parts) or parts[2].shape != (n, 3):
            raise ValueError("the logit_fit arrays differ in length")
        fit = LogitSample(*parts, fve=float(about["logit_fit_fve"]))
    return FinalViews(int(about["epoch"]), attention, rows, fit, spectra)
