"""AdamW's hyperparameters of an imported run: from the file's optimizer state, its config, the
flags, or the layout's defaults, in that order of trust.

`torch.optim.AdamW.state_dict()` (what the paper's final.pth saves under 'optimizer') is
{'state': ..., 'param_groups': [{'lr', 'betas', 'eps', 'weight_decay', ...}]}; under an LR
scheduler `lr` is the scheduled value and `initial_lr` the configured one. It holds only numbers,
tuples, lists and dicts, so it loads with weights_only. The optimizer state is what the run
used: where the config says otherwise, the optimizer wins and a note says so. A flag must agree
with the file; it sets a value the file does not state.
"""

from __future__ import annotations

from typing import Any

from grokinterp.config import FIELDS
from grokinterp.errors import UsageError

HYPERPARAMETERS = ("lr", "weight_decay", "beta1", "beta2", "adam_eps")


def optimizer_values(data: dict) -> dict[str, float]:
    """The hyperparameters recorded in the file's 'optimizer' state dict ({} when absent)."""
    state = data.get("optimizer")
    if state is None:
        return {}
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise UsageError("the file's 'optimizer' is not an optimizer state dict (param_groups)")
    found = [_group_values(group) for group in groups]
    if any(values != found[0] for values in found[1:]):
        raise UsageError(
            "the file's optimizer has parameter groups with different hyperparameters; "
            "grokinterp's runs use one set for every parameter"
        )
    return found[0]


def _group_values(group: dict) -> dict[str, float]:
    values = {"lr": group.get("initial_lr", group.get("lr"))}
    values["weight_decay"] = group.get("weight_decay")
    values["adam_eps"] = group.get("eps")
    betas = group.get("betas")
    if betas is not None:
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise UsageError(f"the file's optimizer has betas {betas!r}, not a pair")
        values["beta1"], values["beta2"] = betas
    return {name: _number(value, name) for name, value in values.items() if value is not None}


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"the file's optimizer has {name}={value!r}, not a number")
    return float(value)


def resolve(
    from_optimizer: dict[str, float],
    from_config: dict[str, Any],
    flags: dict[str, float | None],
    defaults: dict[str, float],
    source: str,
) -> tuple[dict[str, float], list[str]]:
    """Each of HYPERPARAMETERS and the notes about where the surprising ones came from.

    `source` names the defaults (e.g. "the paper's Config defaults"). UsageError when a flag
    contradicts the file or the config states a non-number."""
    chosen, notes = {}, []
    for name in HYPERPARAMETERS:
        optimizer, config, flag = from_optimizer.get(name), from_config.get(name), flags.get(name)
        if config is not None and (isinstance(config, bool) or not isinstance(config, int | float)):
            raise UsageError(f"the file's config has {name}={config!r}, not a number")
        stated = optimizer if optimizer is not None else config
        if flag is not None and stated is not None and flag != stated:
            raise UsageError(
                f"the file says {name}={stated!r} but {FIELDS[name].flag} says {flag!r}"
            )
        if optimizer is not None and config is not None and optimizer != config:
            notes.append(
                f"{name}: the file's config says {config!r} but its optimizer state {optimizer!r},"
                f" which the run used: recorded {optimizer!r}"
            )
        if stated is not None:
            chosen[name] = float(stated)
        elif flag is not None:
            chosen[name] = float(flag)
        else:
            chosen[name] = defaults[name]
            flag = FIELDS[name].flag
            notes.append(
                f"{name} not in the file: {defaults[name]!r}, {source} (set it with {flag})"
            )
    return chosen, notes
