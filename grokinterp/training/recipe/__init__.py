"""The training recipe of a run: objective, optimiser, gradient filter, norm control and forward
precision, the `recipe` section of `RunConfig` (validated there; by default cross-entropy,
AdamW, no filter, no norm control, float32). One module per family; `Recipe` composes them for
the one training loop:

    forward (precision) -> objective -> backward -> filter -> ⊥Grad -> optimiser -> norm control
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from grokinterp.errors import UsageError
from grokinterp.training.recipe import filters, norm, objectives, optimizers

if TYPE_CHECKING:
    from grokinterp.config import RunConfig

EMBEDDING_PREFIXES = ("embed.", "pos_embed.", "unembed.")
"""Parameters Muon's `hidden` set leaves to AdamW: the embeddings and the unembedding."""


def muon_names(cfg: RunConfig) -> tuple[str, ...]:
    """The parameters Muon updates: `muon_params` (`hidden`: every trained matrix but the
    embeddings and the unembedding); UsageError for a name that is not a trained matrix."""
    from grokinterp.models import architecture

    model = architecture(cfg)
    shapes = model.param_shapes()
    if cfg.muon_params == "hidden":
        return tuple(
            name
            for name in model.trained
            if len(shapes[name]) == 2 and not name.startswith(EMBEDDING_PREFIXES)
        )
    names = tuple(name.strip() for name in cfg.muon_params.split(","))
    for name in names:
        if name not in model.trained:
            raise UsageError(f"muon_params: {name!r} is not a trained parameter of this model")
        if len(shapes[name]) != 2:
            raise UsageError(
                f"muon_params: Muon cannot orthogonalise {name} of shape {shapes[name]}: "
                "only 2-D matrices"
            )
    return names


def check_recipe(cfg: RunConfig) -> None:
    """The recipe checks that need the run's model, which `RunConfig.validate` cannot make:
    UsageError for a `muon_params` name that is not a trained matrix. Called before a run's
    first file is written."""
    if cfg.optimizer == "muon":
        muon_names(cfg)


class Recipe:
    """The recipe shared by runs trained together (their first config's settings; the lr and
    weight decay stay per run), over the model's trained parameters; the tensors it holds (the
    norm cap's limits) live on `device`, the parameters' device."""

    def __init__(self, cfgs: Sequence[RunConfig], device: torch.device | str = "cpu"):
        from grokinterp.models import architecture

        self.cfg = cfg = cfgs[0]
        self.trained = architecture(cfg).trained
        self.objective = objectives.objective(cfg)
        self.muon = muon_names(cfg) if cfg.optimizer == "muon" else ()
        self.momentum = (
            cfg.momentum if cfg.momentum is not None else optimizers.MOMENTUM.get(cfg.optimizer)
        )
        self.lamb = cfg.filter_lambda
        if self.lamb is None:
            self.lamb = filters.LAMBDA.get(cfg.grad_filter)
        self.limits: dict[str, Tensor] = {}
        if cfg.norm_cap is not None:
            initial = [architecture(c).init_params() for c in cfgs]
            stacked = {name: torch.stack([w[name] for w in initial]) for name in self.trained}
            self.limits = {
                name: (cfg.norm_cap * stacked[name].double().flatten(1).norm(dim=1)).to(device)
                for name in norm.matrices(stacked, self.trained)
            }

    def initial_state(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """The optimiser's and the filter's state before step 0: named zero tensors [run, ...]."""
        adam = [name for name in self.trained if name not in self.muon]
        kinds = {"sgd": [("momentum", self.trained)], "adamw": [("m", adam), ("v", adam)]}
        kinds["muon"] = [("m", adam), ("v", adam), ("momentum", self.muon)]
        kinds["adam"] = kinds["adamw"]
        state = {
            f"{kind}.{name}": torch.zeros_like(params[name])
            for kind, names in kinds[self.cfg.optimizer]
            for name in names
        }
        if self.cfg.grad_filter == "ema":
            state |= {f"ema.{name}": torch.zeros_like(params[name]) for name in self.trained}
        if self.cfg.grad_filter == "ma":
            window = self.cfg.filter_window
            for name in self.trained:
                shape = (params[name].shape[0], window, *params[name].shape[1:])
                state[f"ma.{name}"] = params[name].new_zeros(shape)
        return state

    def prepare_(self, params: dict[str, Tensor]) -> None:
        """Bring the initial weights under the norm control (fixed norm: rescaled to it)."""
        if self.cfg.fixed_norm is not None:
            with torch.no_grad():
                norm.fix_norm_(params, self.trained, self.cfg.fixed_norm)

    def warmed_lr(self, lr: Tensor, step) -> Tensor:
        """The learning rate [run] of step `step` (0-based; an int, or a float64 0-d tensor in
        the compiled epoch) under the linear warm-up: lr * min((step + 1) / warmup_steps, 1)."""
        if isinstance(step, Tensor):
            return lr * ((step + 1) / self.cfg.warmup_steps).clamp(max=1.0)
        return lr * min((step + 1) / self.cfg.warmup_steps, 1.0)

    def update_(self, params, grads, state, step, lr: Tensor, wd: Tensor) -> None:
        """`step_` at the warmed-up learning rate of step `step` (`lr` the runs' peak lr)."""
        self.step_(params, grads, state, step, self.warmed_lr(lr, step), wd)

    def step_(self, params, grads, state, step, lr: Tensor, wd: Tensor) -> None:
        """Step `step` (0-based; an int, or a float64 0-d tensor in the compiled epoch) from the
        gradients `grads` of the trained parameters, in place:
        filter, ⊥Grad, optimiser (lr the warmed-up learning rate [run]), norm control."""
        cfg = self.cfg
        if cfg.grad_filter == "ema":
            filters.ema_(grads, state, step, cfg.filter_alpha, self.lamb)
        elif cfg.grad_filter == "ma":
            filters.ma_(grads, state, step, cfg.filter_window, self.lamb)
        if cfg.perpendicular_grad:
            optimizers.perpendicular_(params, grads)
        if cfg.optimizer == "sgd":
            optimizers.sgd_(params, grads, state, lr, wd, self.momentum)
        elif cfg.optimizer == "adam":
            optimizers.adam_(params, grads, state, step + 1, lr, wd, cfg)
        else:
            muon = {name: grads[name] for name in self.muon}
            adam = {name: grad for name, grad in grads.items() if name not in muon}
            optimizers.adamw_(params, adam, state, step + 1, lr, wd, cfg)
            optimizers.muon_(params, muon, state, lr, wd, self.momentum)
        if cfg.fixed_norm is not None:
            norm.fix_norm_(params, self.trained, cfg.fixed_norm)
        norm.cap_norms_(params, self.limits)
