"""grokinterp: train grokking transformers and MLPs and watch the Fourier circuit form.

The notebook API, one call each:

    import grokinterp
    run = grokinterp.open_run("checkpoints/small-seed0")   # config, epochs, metrics(), model()
    grokinterp.train_runs([grokinterp.preset("small")], ["checkpoints/mine"])
    table = grokinterp.load_measures("analyses/small-seed0")      # one row per checkpoint
    summary = grokinterp.Summary.load("analyses/small-seed0")     # key frequencies, phases, ...

Names are imported lazily so that `grokinterp --help` does not pay for torch.
"""

from importlib import import_module

_EXPORTS = {
    "RunConfig": "grokinterp.config",
    "preset": "grokinterp.presets",
    "PRESETS": "grokinterp.presets",
    "GROUP_PRESETS": "grokinterp.presets",
    "UsageError": "grokinterp.errors",
    "open_run": "grokinterp.storage.run",
    "Run": "grokinterp.storage.run",
    "train_runs": "grokinterp.training.loop",
    "resume_runs": "grokinterp.training.loop",
    "GrokTransformer": "grokinterp.models.hooked_transformer",
    "GrokMLP": "grokinterp.models.hooked_mlp",
    "architecture": "grokinterp.models",
    "analyze_run": "grokinterp.analysis.analyze",
    "load_measures": "grokinterp.analysis.analyze",
    "Summary": "grokinterp.analysis.analyze",
    "write_report": "grokinterp.report.page",
    "load_analysis": "grokinterp.report.page",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'grokinterp' has no attribute {name!r}")
