"""The training loop: full-batch or minibatch training (AdamW by default; the run's recipe, see
`grokinterp.training.recipe`) of one or many runs at once, with checkpoints and resume.

Several runs of one architecture (a sweep over seeds, weight decay or train fraction) train as a
single batched model: every parameter carries a leading run axis and the AdamW update is
per run, so each run follows its own trajectory. A single run is the batch of one.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from grokinterp import data
from grokinterp.config import FIELDS, RunConfig
from grokinterp.errors import UsageError
from grokinterp.models import Architecture, architecture
from grokinterp.progress import Progress
from grokinterp.storage import environment, run_lock, store
from grokinterp.tasks import task_of
from grokinterp.training import batch_state, compiled
from grokinterp.training.memory import check_fits
from grokinterp.training.recipe import Recipe, check_recipe
from grokinterp.training.recipe.label_noise import noisy_labels
from grokinterp.training.recipe.precision import check_device, in_precision

DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("fast", "hooked")
SHARED_FIELDS = tuple(name for name, field in FIELDS.items() if not field.per_run)
"""Fields that runs trained together must share (every field not declared `per_run`); the rest
(seeds, lr, weight decay, train fraction, init, label noise) may differ from run to run; runs
with a `batch_size` must also have as many training pairs each (`_check_batchable`)."""

Logits = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]
OnRows = Callable[[Path, list[dict]], None]


def resolve_options(device: str, engine: str) -> torch.device:
    """The torch device that `device` names, after checking both options."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return resolve_device(device)


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def hooked_logits(model: Architecture, device: torch.device) -> Logits:
    """The plain path: every run through the family's full hooked module, every hook."""
    from torch.func import functional_call

    cfg = model.cfg
    model = model.hooked().to(device)

    def logits(params: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
        per_run = []
        for r in range(a.shape[0]):
            tokens = data.tokens(cfg, a[r], b[r])
            weights = {name: value[r] for name, value in params.items()}
            per_run.append(functional_call(model, weights, (tokens,))[:, -1])
        return torch.stack(per_run)

    return logits


@dataclass
class PaddedPairs:
    """A set of (a, b, label) pairs per run (one run's train or test pairs), stacked [run, pair]
    and padded to the longest run's count; `mask` (float64) is 1 on real pairs, else 0."""

    a: Tensor
    b: Tensor
    label: Tensor
    mask: Tensor

    @classmethod
    def stack(
        cls,
        cfgs: Sequence[RunConfig],
        index_sets: Sequence[Tensor],
        device,
        relabels: Sequence[dict[int, int]] = (),
    ) -> PaddedPairs:
        """The runs' pairs `index_sets` (grid indices) with their task's labels, except those
        that `relabels[r]` ({grid index: label}, label noise) replaces for run r."""
        longest = max(len(ix) for ix in index_sets)
        index = torch.zeros(len(cfgs), longest, dtype=torch.int64)
        mask = torch.zeros(len(cfgs), longest, dtype=torch.float64)
        for r, ix in enumerate(index_sets):
            index[r] = ix[0]  # padding repeats a real pair (masked out): its label is valid
            index[r, : len(ix)] = ix
            mask[r, : len(ix)] = 1.0
        n = cfgs[0].n_elements
        label = torch.stack([data.labels(cfg)[index[r]] for r, cfg in enumerate(cfgs)])
        for r, relabel in enumerate(relabels):  # index_sets are sorted: find each pair's slot
            if relabel:
                grids = torch.tensor(list(relabel), dtype=torch.int64)
                slots = torch.searchsorted(index[r, : len(index_sets[r])], grids)
                label[r, slots] = torch.tensor(list(relabel.values()), dtype=torch.int64)
        return cls(*(t.to(device) for t in (index // n, index % n, label, mask)))

    def take(self, index: Tensor) -> PaddedPairs:
        """The pairs at positions `index` [run, k] (int64, on these pairs' device) of each run."""
        return PaddedPairs(*(t.gather(1, index) for t in (self.a, self.b, self.label, self.mask)))

    def loss_and_accuracy(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Per-run mean cross-entropy in float64 and accuracy."""
        log_probs = logits.double().log_softmax(dim=-1)
        nll = -log_probs.gather(-1, self.label[..., None])[..., 0]
        correct = (logits.argmax(dim=-1) == self.label).double()
        count = self.mask.sum(dim=1)
        return (nll * self.mask).sum(dim=1) / count, (correct * self.mask).sum(dim=1) / count


def train_step(params, state, loss: Tensor, step, lr, wd, recipe: Recipe, update=None) -> None:
    """Step `step` (0-based) of every run: backward from the per-run training `loss` of
    `params`, then the recipe's step (`Recipe.update_`: warm-up, filter, ⊥Grad, optimiser,
    norm control) on the trained parameters, updating `state`; `update` replaces
    `recipe.update_` (the compiled epoch's, with `step` a tensor)."""
    loss.sum().backward()
    grads = {name: params[name].grad for name in recipe.trained}
    with torch.no_grad():
        (update or recipe.update_)(params, grads, state, step, lr, wd)
    for name in recipe.trained:
        params[name].grad = None


def metrics_row(logits_fn: Logits, params, test: PaddedPairs, unseen_weight, train_loss, train_acc):
    """The metrics row [run, 5] (train_loss, test_loss, train_acc, test_acc, test_acc_unseen,
    float64) of `params`, from their training loss and accuracy and a forward on the test
    pairs; call it under no_grad."""
    test_logits = logits_fn(params, test.a, test.b)
    test_loss, test_acc = test.loss_and_accuracy(test_logits)
    correct = (test_logits.argmax(dim=-1) == test.label).double()
    unseen_acc = (correct * unseen_weight).sum(dim=1) / unseen_weight.sum(dim=1)
    return torch.stack([train_loss, test_loss, train_acc, test_acc, unseen_acc], 1)


def _seeded(text: str) -> torch.Generator:
    """A CPU generator seeded with the first 8 bytes (little-endian, top bit cleared) of
    sha256(text)."""
    digest = hashlib.sha256(text.encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def epoch_order(cfg: RunConfig, epoch: int) -> Tensor:
    """The order (int64 [n_train], a permutation of 0..n_train-1: positions in the run's sorted
    training split) in which epoch `epoch` (0-based) visits the training pairs of a minibatch
    run: `torch.randperm(n_train)` from a CPU generator seeded with the first 8 bytes
    (little-endian, top bit cleared) of sha256(f"grokinterp minibatch {cfg.seed} {epoch}"), a
    pure function of (seed, epoch) that draws nothing from torch's global generator."""
    generator = _seeded(f"grokinterp minibatch {cfg.seed} {epoch}")
    return torch.randperm(cfg.n_train, generator=generator)


def independent_batch(cfg: RunConfig, step: int) -> Tensor:
    """The minibatch of optimiser step `step` (0-based) under `batch_sampling="independent"`:
    the first batch_size entries of `torch.randperm(n_train)`, sorted ascending (int64
    [batch_size], distinct positions in the sorted training split), from a CPU generator seeded
    as `epoch_order`'s but with sha256(f"grokinterp independent batch {cfg.seed} {step}"): a
    uniformly random batch_size-subset, independent of every other step's (devinterp's grokking
    example draws a fresh shuffled DataLoader batch each step), and a pure function of
    (seed, step)."""
    generator = _seeded(f"grokinterp independent batch {cfg.seed} {step}")
    return torch.randperm(cfg.n_train, generator=generator)[: cfg.batch_size].sort().values


def epoch_batches(cfg: RunConfig, epoch: int) -> list[Tensor]:
    """The minibatches of epoch `epoch`. `batch_sampling="epoch"`: `epoch_order` cut into
    ceil(n_train / batch_size) consecutive slices of batch_size positions (the last may be
    smaller), each sorted ascending (a batch's loss is a mean over a set; sorted, a batch of the
    whole split is the full batch in split order); batch k of epoch e is optimiser step
    e * ceil(n_train / batch_size) + k. `independent`: the one batch `independent_batch(cfg,
    epoch)`, epoch e being step e."""
    if cfg.batch_sampling == "independent":
        return [independent_batch(cfg, epoch)]
    order = epoch_order(cfg, epoch)
    return [chunk.sort().values for chunk in order.split(cfg.batch_size)]


def steps_per_epoch(cfg: RunConfig) -> int:
    """Optimiser steps per epoch: 1 at full batch or with independent batches, else
    ceil(n_train / batch_size)."""
    if cfg.batch_size is None or cfg.batch_sampling == "independent":
        return 1
    return math.ceil(cfg.n_train / cfg.batch_size)


def _check_batchable(cfgs: Sequence[RunConfig]) -> None:
    for cfg in cfgs[1:]:
        for field in SHARED_FIELDS:
            if getattr(cfg, field) != getattr(cfgs[0], field):
                raise UsageError(f"runs trained together must share {field}")
    if cfgs[0].batch_size is not None and len({cfg.n_train for cfg in cfgs}) > 1:
        raise UsageError(
            "runs trained together with a batch_size need as many training pairs each; "
            "train runs of other train fractions one batch after another"
        )


def train_runs(
    cfgs: Sequence[RunConfig],
    run_dirs: Sequence[Path],
    device: str = "auto",
    engine: str = "fast",
    progress: bool = True,
    compile: str = "auto",
    on_rows: OnRows | None = None,
) -> None:
    """Train new runs, each into its own (new or empty) run directory, holding every run's lock
    (`grokinterp.storage.run_lock`) from before the first write to the end; `compile` (auto, on,
    off) chooses the compiled epoch (`grokinterp.training.compiled`) or the eager loop.
    `on_rows(run_dir, rows)` receives each run's new metrics rows (`store.metric_records`) as
    each checkpoint writes them (a tracker stream, `grokinterp.storage.trackers`)."""
    cfgs = [cfg.validate() for cfg in cfgs]
    for cfg in cfgs:
        check_recipe(cfg)
    _check_batchable(cfgs)
    if len({Path(run_dir).resolve() for run_dir in run_dirs}) != len(run_dirs):
        raise UsageError("the runs of a batch need a run directory each; one is named twice")
    torch_device = resolve_options(device, engine)
    check_fits(cfgs, torch_device)
    use_compiled = _choose(compile, cfgs, torch_device, engine)
    with run_lock.holding(run_dirs):
        for run_dir in run_dirs:
            store.check_fresh_run_dir(run_dir)
        _start(cfgs, run_dirs, (torch_device, engine, use_compiled, progress, on_rows))


def _start(cfgs, run_dirs, options) -> None:
    """Write the new runs' files and record, then train them from step 0."""
    torch_device, _, use_compiled = options[:3]
    splits = [data.train_indices(cfg) for cfg in cfgs]
    relabels = [noisy_labels(cfg, split) for cfg, split in zip(cfgs, splits, strict=True)]
    for cfg, run_dir, split, relabel in zip(cfgs, run_dirs, splits, relabels, strict=True):
        store.write_run_files(run_dir, cfg, split, relabel)
        environment.record(run_dir, "train", torch_device, compiled=use_compiled)
    batch_state.start(run_dirs)
    initial = [architecture(cfg).init_params() for cfg in cfgs]
    params = {name: torch.stack([w[name] for w in initial]) for name in initial[0]}
    recipe = Recipe(cfgs)
    recipe.prepare_(params)
    state = recipe.initial_state(params)
    history = [np.empty((0, len(store.METRIC_COLUMNS))) for _ in cfgs]
    splits = list(zip(splits, relabels, strict=True))
    _loop(cfgs, run_dirs, splits, params, state, 0, history, options)


def resume_runs(
    run_dirs: Sequence[Path],
    device: str = "auto",
    engine: str = "fast",
    progress: bool = True,
    epochs: int | None = None,
    compile: str = "auto",
    on_rows: OnRows | None = None,
) -> None:
    """Continue killed runs from their last saved state; the result equals an unbroken run.

    A run resumes with every run it was trained with, in the same batch order and from their
    batch's committed step (`grokinterp.training.batch_state`), whichever of them `run_dirs` names;
    runs of different batches resume one batch after another. With `epochs` larger than the
    runs' own, a run (finished or not) is trained on to that many epochs; its config.json then
    records the new count, the only field that may change. Every run of those batches is locked
    (`grokinterp.storage.run_lock`) for the whole resume."""
    torch_device = resolve_options(device, engine)
    compiled.check_choice(compile)
    members = [run for batch in batch_state.batches_of(run_dirs) for run in batch.runs]
    with run_lock.holding(members):  # then read again: another writer may have gone on
        for batch in batch_state.resumable(run_dirs, epochs):
            _resume_batch(batch, (torch_device, engine, compile, progress, on_rows), epochs)


def _resume_batch(batch, options, epochs) -> None:
    batch_state.settle(batch)
    run_dirs, step = batch.runs, batch.step
    cfgs = [store.read_config(run_dir) for run_dir in run_dirs]
    if epochs is not None:
        cfgs = [cfg.replace(epochs=epochs).validate() for cfg in cfgs]
        for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
            store.atomic_write(Path(run_dir) / store.CONFIG_FILE, cfg.to_json().encode())
    _check_batchable(cfgs)
    states = [batch_state.load_state(run_dir) for run_dir in run_dirs]
    names = architecture(cfgs[0]).param_shapes()
    params = {name: torch.stack([s[0][name] for s in states]) for name in names}
    state = {
        key: torch.stack([s[0][key] for s in states])
        for key in states[0][0]
        if key not in names and key != "rng"
    }
    torch.set_rng_state(states[0][0]["rng"])
    splits = [(store.read_split(d), store.read_noisy_labels(d)) for d in run_dirs]
    device, engine, compile, progress, on_rows = options
    before = [environment.records(run_dir) for run_dir in run_dirs]
    before = any(r[-1].get("compiled", False) for r in before if r)
    use_compiled = _choose(compile, cfgs, device, engine, before)
    for run_dir in run_dirs:
        environment.resume(run_dir, device, compiled=use_compiled)
    history = [store.truncate_metrics(run_dir, step) for run_dir in run_dirs]
    options = (device, engine, use_compiled, progress, on_rows)
    _loop(cfgs, run_dirs, splits, params, state, step, history, options)


@dataclass
class Epoch:
    """One epoch of runs trained together, eager or compiled: `forward(params)` gives the
    objective's loss [run] on every training pair and the metrics row [run, 5] (train_loss,
    test_loss, train_acc, test_acc, test_acc_unseen) of `params`; `step(params, state, loss,
    step)` backpropagates and applies the recipe's update of step `step` (0-based). Minibatch
    runs (eager only) use `metrics(params)` (the row, no gradient) and `batch_loss(params,
    index)` (the objective's loss [run] on the positions `index` [run, k] of the split)."""

    forward: Callable
    update: Callable | None
    step_arg: Callable
    recipe: Recipe
    lr: Tensor
    wd: Tensor
    metrics: Callable
    batch_loss: Callable

    def step(self, params, state, loss: Tensor, step: int) -> None:
        t = self.step_arg(step)
        train_step(params, state, loss, t, self.lr, self.wd, self.recipe, self.update)


def _choose(compile: str, cfgs, device, engine: str, before=None) -> bool:
    """`compiled.decide`, saying on stderr why runs asked to compile (`on`) train eagerly
    (`auto`'s choice follows `compiled.AUTO_CPU_MIN_WORK`; docs/speed.md, "The compiled epoch")."""
    use_compiled, reason = compiled.decide(compile, cfgs, device, engine, before)
    if reason is not None and compile == "on":
        print(f"compile {compile}: training eagerly, since {reason}", file=sys.stderr, flush=True)
    return use_compiled


def build_epoch(cfgs, splits, params, state, options) -> Epoch:
    """The epoch of `cfgs` on the device, for `params` and `state` already there (trained
    parameters requiring grad); `splits` holds each run's (train indices, noisy labels),
    `options` (device, engine, compiled or not, ...)."""
    device, engine, use_compiled = options[:3]
    cfg = cfgs[0]
    model = architecture(cfg)
    recipe = Recipe(cfgs, device)
    splits, relabels = [s for s, _ in splits], [r for _, r in splits]
    train = PaddedPairs.stack(cfgs, splits, device, relabels)
    tests = [data.test_indices(task_of(c), s) for c, s in zip(cfgs, splits, strict=True)]
    test = PaddedPairs.stack(cfgs, tests, device)
    unseen_weight = _unseen_weights(cfgs, splits, tests, test.mask.shape[1]).to(device)
    logits_fn = model.logits if engine == "fast" else hooked_logits(model, device)
    logits_fn = in_precision(logits_fn, cfg.precision)

    def forward(params):
        logits = logits_fn(params, train.a, train.b)
        loss, accuracy = train.loss_and_accuracy(logits)
        with torch.no_grad():
            row = metrics_row(logits_fn, params, test, unseen_weight, loss.detach(), accuracy)
        if recipe.objective is not None:
            loss = recipe.objective(logits, train.label, train.mask)
        return loss, row

    def metrics(params):
        with torch.no_grad():
            loss, accuracy = train.loss_and_accuracy(logits_fn(params, train.a, train.b))
            return metrics_row(logits_fn, params, test, unseen_weight, loss, accuracy)

    def batch_loss(params, index):
        batch = train.take(index)
        logits = logits_fn(params, batch.a, batch.b)
        if recipe.objective is not None:
            return recipe.objective(logits, batch.label, batch.mask)
        return batch.loss_and_accuracy(logits)[0]

    update, step_arg = None, int
    if use_compiled:
        forward, update = compiled.compile_epoch(forward, recipe.update_, params, state, device)
        step_arg = partial(compiled.step_tensor, device=device)
    lr = torch.tensor([c.lr for c in cfgs], device=device)
    wd = torch.tensor([c.weight_decay for c in cfgs], device=device)
    return Epoch(forward, update, step_arg, recipe, lr, wd, metrics, batch_loss)


def on_device(model: Architecture, params: dict, state: dict, device) -> tuple[dict, dict]:
    """The weights and the recipe's state moved to `device`, the trained weights requiring
    grad."""
    params = {name: t.to(device) for name, t in params.items()}
    for name in model.trained:
        params[name].requires_grad_(True)
    return params, {key: t.to(device) for key, t in state.items()}


def _loop(cfgs, run_dirs, splits, params, state, start, history, options):
    """Train from epoch `start`; `splits` holds each run's (train indices, noisy labels), `state`
    the recipe's named state tensors [run, ...] (AdamW: `m.<name>`, `v.<name>`), `options`
    (device, engine, compiled or not, progress, on_rows)."""
    device, _, _, progress, on_rows = options
    cfg = cfgs[0]
    model = architecture(cfg)
    check_device(cfg.precision, device)
    params, state = on_device(model, params, state, device)
    epoch_fns = build_epoch(cfgs, splits, params, state, options)

    # metrics[e, r] = (train_loss, test_loss, train_acc, test_acc, test_acc_unseen) of the
    # weights after e steps; filled on the device, copied to the host only at checkpoints.
    metrics = torch.zeros(cfg.epochs + 1, len(cfgs), 5, dtype=torch.float64, device=device)
    for r, rows in enumerate(history):
        metrics[: len(rows), r] = torch.as_tensor(rows[:, 1:], dtype=torch.float64).to(device)

    written = start  # metrics rows in each metrics.csv: the history, cut to `start` on resume

    def save(epoch: int, finished: bool) -> None:
        nonlocal written
        rows = metrics[written : epoch + 1].cpu().numpy()
        epochs = np.arange(written, epoch + 1, dtype=np.float64)[:, None]
        state_cpu = {name: t.detach().cpu() for name, t in params.items()}
        states, written_rows = [], []
        for r, (run_cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
            weights = {name: t[r] for name, t in state_cpu.items()}
            store.save_checkpoint(run_dir, run_cfg, epoch, model.state_dict_of(weights))
            written_rows.append(np.concatenate([epochs, rows[:, r]], axis=1))
            store.append_metrics(run_dir, written_rows[-1])
            saved = {**weights, "rng": torch.get_rng_state()}
            saved.update({key: t[r].detach().cpu() for key, t in state.items()})
            states.append(saved)
        batch_state.commit(run_dirs, epoch, states, finished)
        written = epoch + 1
        for run_dir, run_rows in zip(run_dirs, written_rows, strict=True):
            if on_rows is not None:  # after the commit: a tracker never delays a saved state
                on_rows(run_dir, store.metric_records(run_rows))

    save_epochs = set(cfg.save_epochs)
    minibatch = cfg.batch_size is not None
    per_epoch = steps_per_epoch(cfg)
    bar = Progress(cfg.epochs, start, enabled=progress, unit="epoch")
    for epoch in range(start, cfg.epochs):
        if minibatch:
            metrics[epoch] = epoch_fns.metrics(params)
        else:
            loss, metrics[epoch] = epoch_fns.forward(params)
        if epoch in save_epochs and not (epoch == start and start > 0):
            save(epoch, finished=False)
        if minibatch:
            batches = zip(*(epoch_batches(run_cfg, epoch) for run_cfg in cfgs), strict=True)
            for k, index in enumerate(batches):
                loss = epoch_fns.batch_loss(params, torch.stack(index).to(device))
                epoch_fns.step(params, state, loss, epoch * per_epoch + k)
        else:
            epoch_fns.step(params, state, loss, epoch)
        bar.update(epoch + 1, partial(_describe, metrics[epoch]))
    final = epoch_fns.metrics(params) if minibatch else epoch_fns.forward(params)[1]
    metrics[cfg.epochs] = final
    save(cfg.epochs, finished=True)
    bar.close(partial(_describe, metrics[cfg.epochs]))


def _unseen_weights(cfgs, splits, tests, width: int) -> Tensor:
    """Per test slot, 1 where the pair's answer cannot be read off a training pair by swapping
    its operands (`Task.swap_unseen`), else 0 (float64)."""
    weight = torch.zeros(len(cfgs), width, dtype=torch.float64)
    for r, (cfg, split, test) in enumerate(zip(cfgs, splits, tests, strict=True)):
        weight[r, : len(test)] = task_of(cfg).swap_unseen(split, test).double()
    return weight


def _describe(values: Tensor) -> str:
    """Status text for the first run's metrics row."""
    train_loss, test_loss, train_acc, test_acc = (float(x) for x in values[0, :4])
    return (
        f"train_loss {train_loss:.3g}  test_loss {test_loss:.3g}  "
        f"train_acc {train_acc:.3f}  test_acc {test_acc:.3f}"
    )
