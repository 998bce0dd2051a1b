"""Chughtai, Chan, Nanda 2023 ("A toy model of universality") `OneLayerMLP` -> a grokinterp run.

Layout facts, from bilal-chughtai/rep-theory-mech-interp (rep_theory/utils/models.py, groups.py,
config.py, train.py):
- `OneLayerMLP`'s state dict: W_x [n, e] and W_y [n, e], the embeddings of the left operand
  x = data[:, 0] and the right one y = data[:, 1]; W [2e, hidden] acting on hstack(W_x[x],
  W_y[y]); ReLU; W_U [hidden, n]; no biases. `BilinearNet` (W_x, W_y, W_U, the embeddings
  multiplied elementwise) is a network grokinterp does not have.
- train.py saves `model.state_dict()` as `<task_dir>/model.pt` beside `<task_dir>/cfg.json`:
  lr, weight_decay, betas, layers {embed_dim, hidden_dim}, model, group, group_parameter,
  frac_train, seed, num_epochs (AdamW, full batch, no schedule).
- The data rows are (x, y, x * y) at index x * n + y; `generate_train_test_data` calls
  `get_all_data(seed)`: torch.manual_seed(seed) and torch.randperm(n * n) reorder the rows (not
  when seed is 0: `if shuffle_seed:`), the first int(frac_train * n * n) train.
- Element indices. CyclicGroup(n): the residue k, x * y = (x + y) mod n. DihedralGroup(n), order
  2n: index r + s n, composed as (x_r + y_r, y_s) when x_s = 0 and (x_r - y_r, 1 + y_s) when
  x_s = 1, which is composition of the vertex maps v -> r + v (s = 0) and v -> r - v (s = 1),
  x after y. SymmetricGroup(n): index i is sympy's `SymmetricGroup(n)._elements[i]`, the list
  that `generate()` yields (as `elements` caches it in recent sympy); x * y is sympy's product,
  x first, (x * y)(i) = y(x(i)). grokinterp composes b first, (a * b)(i) = a(b(i)), so their
  (x, y) is grokinterp's (a, b) = (y, x): a's table is W_y, b's W_x, and W's halves swap.
  Each element is matched to grokinterp's index by its permutation (`Group.index`).
  AlternatingGroup builds its order from a second sympy group: not read here, refused.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from grokinterp.config import RunConfig, is_prime
from grokinterp.errors import UsageError
from grokinterp.storage.importers.common import (
    Imported,
    Options,
    check_series,
    config_dict,
    grokinterp_state,
    train_frac_for,
)
from grokinterp.storage.importers.mlp_common import (
    imported_run,
    load_with_config,
    mlp_config,
    read_series,
    refuse_flags,
)
from grokinterp.storage.importers.task_choice import check_split, task_for
from grokinterp.storage.importers.transformer_lens import GROUP_P
from grokinterp.tasks.groups import build_group

PRESET, CONFIG = "imported-chughtai", "cfg.json"
_NAMES = {"W_x", "W_y", "W", "W_U"}
_GROUPS = ("CyclicGroup", "DihedralGroup", "SymmetricGroup")


def load(source) -> dict:
    return load_with_config(source, CONFIG, "Chughtai et al.'s model.pt")


def group_of(family: str, n: int) -> tuple[str | None, int, np.ndarray]:
    """(grokinterp group name or None for `add` mod prime n, the element count, their element i's
    grokinterp index) of their group `family` with parameter n."""
    if family == "CyclicGroup":
        return (None if is_prime(n) else f"Z{n}"), n, np.arange(n)
    if family == "DihedralGroup":
        name = f"D{n}"
        group = build_group(name)
        vertices = np.arange(n)
        maps = [(r + (vertices if s == 0 else -vertices)) % n for s in (0, 1) for r in range(n)]
        return name, 2 * n, np.array([group.index(m) for m in maps])
    from sympy.combinatorics.named_groups import SymmetricGroup

    name = f"S{n}"
    group = build_group(name)
    perms = [p.array_form for p in SymmetricGroup(n).generate()]
    return name, len(perms), np.array([group.index(p) for p in perms])


def read(data: dict, opts: Options) -> Imported:
    refuse_flags(opts, ("p", "group", "operation", "seed", "data_seed", "train_frac"), "chughtai")
    config = config_dict(data)
    model, family = config.get("model"), config.get("group")
    if model != "OneLayerMLP":
        raise UsageError(f"cfg.json has model {model!r}; grokinterp reads their OneLayerMLP only")
    if family not in _GROUPS:
        raise UsageError(f"cfg.json has group {family!r}; grokinterp reads {', '.join(_GROUPS)}")
    try:
        n_param, seed = int(config["group_parameter"]), int(config["seed"])
        frac, layers = float(config["frac_train"]), config["layers"]
        e, m = int(layers["embed_dim"]), int(layers["hidden_dim"])
        lr, wd = float(config["lr"]), float(config["weight_decay"])
        beta1, beta2 = (float(b) for b in config["betas"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"cfg.json is incomplete ({exc!r})") from None
    group, n, index = group_of(family, n_param)
    if opts.epoch is None and "num_epochs" in config:
        data = {**data, "epoch": int(config["num_epochs"])}
    series, curves, notes = read_series(data, opts, _NAMES)
    shapes = {"W_x": (n, e), "W_y": (n, e), "W": (2 * e, m), "W_U": (m, n)}
    check_series(series, shapes, _NAMES, set())
    operation = "compose" if group else "add"
    task = task_for(operation, group, n)
    swap = family == "SymmetricGroup"
    train = check_split(_their_split(n, frac, seed, index, swap), task)
    cfg = mlp_config(
        preset=PRESET,
        p=n if group is None else GROUP_P,
        group=group,
        operation=operation,
        embedding="separate",
        d_model=e,
        d_mlp=m,
        activation="relu",
        lr=lr,
        weight_decay=wd,
        beta1=beta1,
        beta2=beta2,
        train_frac=train_frac_for(len(train), task.n_pairs, None),
        epochs=max(series[-1][0], 1),
        save_every=max(series[-1][0], 1),
        seed=seed,
        data_seed=seed,
    )
    if swap:
        notes.append("their (x, y) is grokinterp's (b, a): sympy's x * y applies x first")
    return imported_run(
        cfg, train, series, lambda state, c: _convert(state, c, index, swap), curves, notes
    )


def _their_split(n: int, frac: float, seed: int, index: np.ndarray, swap: bool) -> list[int]:
    """Their training pairs (the first int(frac n^2) rows after the shuffle) as grokinterp pair
    indices a * n + b."""
    rows = torch.arange(n * n)
    if seed:
        rows = torch.randperm(n * n, generator=torch.Generator().manual_seed(seed))
    chosen = rows[: int(frac * n * n)].numpy()
    x, y = index[chosen // n], index[chosen % n]
    a, b = (y, x) if swap else (x, y)
    return (a * n + b).tolist()


def _convert(state: dict[str, Tensor], cfg: RunConfig, index: np.ndarray, swap: bool) -> dict:
    """Their weights with rows and columns put at grokinterp's element indices."""
    e, order = cfg.d_model, torch.as_tensor(np.argsort(index))  # order[g] = their index of g
    left, right = state["W"][:e], state["W"][e:]
    tables = (state["W_y"], state["W_x"]) if swap else (state["W_x"], state["W_y"])
    halves = (right, left) if swap else (left, right)
    params = {
        "embed.W_E_a": tables[0][order],
        "embed.W_E_b": tables[1][order],
        "blocks.0.mlp.W_in": torch.cat(halves),
        "unembed.W_U": state["W_U"][:, order],
    }
    return grokinterp_state(cfg, params)
