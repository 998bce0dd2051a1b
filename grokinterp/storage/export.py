"""A run's checkpoints -> files that other code loads, and that `grokinterp import` reads back
as the same run. One converter per target (`--to`):

- `transformer-lens`: one checkpoint for TransformerLens 4 (below).
- `safetensors`: one checkpoint of any family under grokinterp's own parameter names:
  OUT/model.safetensors (float32) and OUT/config.json = {"grokinterp": the block below}.
- `devinterp`: the run's whole series in the layout of devinterp's grokking example,
  OUT/model.pt (`grokinterp.storage.importers.devinterp`, which holds both directions of the
  map). A run fits it when the layout's importer reads the file back as the same config; one
  that does not is refused naming the fields the layout cannot state.

TransformerLens 4 dropped `HookedTransformer`; its TL-native `TransformerBridge`
(`TransformerBridge.boot_native(TransformerBridgeConfig)`) is built from a config alone, and
`transformer_lens.utilities.tl_checkpoint_conversion.convert_tl_checkpoint` turns a classic
`HookedTransformer.state_dict()` (the property names `blocks.0.attn.W_Q`, per-head shapes) into
the bridge's keys. grokinterp's transformer family stores exactly that classic state dict, so the
export writes it unchanged with the bridge's config beside it:

    OUT/model.safetensors   the checkpoint's state dict (float32, HookedTransformer names)
    OUT/config.json         TransformerBridgeConfig keyword arguments (n_ctx and d_vocab of the
                            run's input format: [a, b, =] 3 and n + 1, [a, b] 2 and n,
                            [a, op, b, =] 4 and n + 2; d_vocab_out = n answers, read at the
                            last position), plus {"grokinterp": {"run", "epoch", "operation",
                            "group", "p", "input_format", "symbol_ids" (the token id of `=`
                            and `op`), "config" (the run's config), "split" ({"train_indices",
                            "noisy_labels"})}} to drop before use; `grokinterp import OUT
                            --layout grokinterp-export` (or `--layout transformer-lens` on it)
                            rebuilds the run from it

Load it with

    cfg = json.load(open("OUT/config.json")); cfg.pop("grokinterp")
    bridge = TransformerBridge.boot_native(TransformerBridgeConfig(**cfg))
    bridge.load_state_dict(convert_tl_checkpoint(load_file("OUT/model.safetensors"), cfg_obj))

Only what the bridge computes the same way is exported: the transformer family with relu or gelu
and attention rate 1. The MLP family (no attention, no positions) and the quadratic activation
have no TransformerLens model; an attention rate below 1 (Zhong et al.'s mix with uniform
attention) is not an attention TransformerLens computes. Each is refused in one line, nothing
written, as is every other target's refusal.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch

from grokinterp.config import RunConfig
from grokinterp.errors import UsageError
from grokinterp.storage import store
from grokinterp.storage.importers import devinterp
from grokinterp.storage.importers.common import Options, check_fresh_out

TARGETS = ("transformer-lens", "safetensors", "devinterp")
STATE_FILE, CONFIG_FILE, DEVINTERP_FILE = "model.safetensors", "config.json", "model.pt"
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu"}
"""grokinterp activation -> TransformerLens act_fn (`gelu` is the exact erf form in both)."""


def bridge_config(cfg: RunConfig) -> dict:
    """TransformerBridgeConfig keyword arguments for the run's model (JSON-ready).

    UsageError for a model TransformerLens has no equivalent of."""
    if cfg.model != "transformer":
        raise UsageError(
            f"a {cfg.model} run has no TransformerLens equivalent (TransformerLens models are "
            "transformers with attention and positions); only transformer runs export"
        )
    if cfg.activation not in _ACTIVATIONS:
        raise UsageError(
            f"activation {cfg.activation!r} has no TransformerLens act_fn; exportable: "
            f"{', '.join(_ACTIVATIONS)}"
        )
    if cfg.layer_norm == "post":
        raise UsageError(
            "post-LayerNorm has no TransformerLens equivalent (its LayerNorms come before each "
            "sublayer); only layer_norm none or pre exports"
        )
    if cfg.attention_rate != 1.0:
        raise UsageError(
            f"attention rate {cfg.attention_rate} adds constant attention, which "
            "TransformerLens does not compute; only rate 1 exports"
        )
    return {
        "d_model": cfg.d_model,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "d_head": cfg.d_head,
        "d_mlp": cfg.d_mlp,
        "n_ctx": cfg.n_ctx,
        "d_vocab": cfg.d_vocab,
        "d_vocab_out": cfg.d_vocab_out,
        "act_fn": _ACTIVATIONS[cfg.activation],
        "normalization_type": "LN" if cfg.layer_norm == "pre" else None,
        "positional_embedding_type": "standard",
        "attn_only": False,
        "architecture": "TransformerLensNative",
    }


def export_run(
    run_dir: str | Path, out_dir: str | Path, to: str, epoch: int | None = None
) -> tuple[Path, int]:
    """Write the run in the format `to` (one of TARGETS) into `out_dir` (absent or empty): the
    checkpoint at `epoch` (default: the last), or for `devinterp` the whole series; return the
    directory and the (last) epoch written.

    UsageError, with nothing written, for a run the target cannot represent, an epoch without a
    checkpoint, or an `out_dir` that holds files."""
    from grokinterp.storage.run import open_run

    if to not in TARGETS:
        raise UsageError(f"unknown export target {to!r}; choose one of {', '.join(TARGETS)}")
    run = open_run(run_dir)
    config = bridge_config(run.config) if to == "transformer-lens" else {}
    epochs = run.epochs
    if not epochs:
        raise UsageError(f"{run_dir}: no complete checkpoint to export")
    if to == "devinterp" and epoch is not None:
        raise UsageError("the devinterp layout holds the run's whole series; drop --epoch")
    epoch = epochs[-1] if epoch is None else epoch
    if epoch not in epochs:
        raise UsageError(f"{run_dir} has no checkpoint at epoch {epoch}; it has {_span(epochs)}")
    out_dir = Path(out_dir)
    check_fresh_out(out_dir)
    split = {"train_indices": run.train_indices.tolist()}
    if noisy := store.read_noisy_labels(run.path):
        split["noisy_labels"] = {str(k): v for k, v in sorted(noisy.items())}
    if to == "devinterp":
        if noisy:
            raise UsageError(
                "the devinterp layout has no place for label noise; use --to safetensors"
            )
        data = _devinterp_file(run.config, [(e, run.state_dict(epoch=e)) for e in epochs], split)
        _write(out_dir, {DEVINTERP_FILE: lambda path: torch.save(data, path)})
        return out_dir, epoch
    state = run.state_dict(epoch=epoch)
    config["grokinterp"] = _block(run.config, run_dir, epoch, split)
    _write(out_dir, {STATE_FILE: _safetensors(state), CONFIG_FILE: _json(config)})
    return out_dir, epoch


def _block(cfg: RunConfig, run_dir, epoch: int, split: dict) -> dict:
    """What `--layout grokinterp-export` reads back: the run's config, split and epoch."""
    return {
        "run": str(run_dir),
        "epoch": epoch,
        "operation": cfg.operation,
        "group": cfg.group,
        "p": cfg.p,
        "input_format": cfg.input_format,
        "symbol_ids": cfg.symbol_ids,
        "config": json.loads(cfg.to_json()),
        "split": split,
    }


def _devinterp_file(cfg: RunConfig, series: list, split: dict) -> dict:
    """devinterp's file of the series, checked by reading it back with the layout's importer:
    UsageError naming the fields that come back otherwise."""
    fits = (cfg.model, cfg.embedding, cfg.combine, cfg.n_layers, cfg.first_bias) == (
        "mlp", "shared", "concat", 1, "per-operand",
    )  # fmt: skip
    if not fits:
        raise UsageError(
            "the devinterp layout is an MLP with one shared embedding, concatenated operands, "
            "one hidden layer and per-operand first-layer biases; use --to safetensors"
        )
    data = devinterp.export_file(cfg, series, split["train_indices"])
    back = devinterp.read(data, Options())
    changed = [
        f"{f.name}={getattr(cfg, f.name)!r} (reads back as {getattr(back.cfg, f.name)!r})"
        for f in fields(RunConfig)
        if getattr(cfg, f.name) != getattr(back.cfg, f.name)
    ]
    if changed:
        raise UsageError(
            f"the devinterp layout cannot state {', '.join(changed)}; use --to safetensors"
        )
    return data


def _safetensors(state: dict) -> Callable[[Path], None]:
    from safetensors.torch import save_file

    return lambda path: save_file({name: t.contiguous() for name, t in state.items()}, str(path))


def _json(value: dict) -> Callable[[Path], None]:
    return lambda path: store.atomic_write(path, json.dumps(value, indent=2).encode())


def _span(epochs: list[int]) -> str:
    return f"{len(epochs)} checkpoints from epoch {epochs[0]} to {epochs[-1]}"


def _write(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Each file by its writer into a hidden sibling, then renamed into place (nothing left on
    failure)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.export-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, write in writers.items():
            write(tmp / name)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
