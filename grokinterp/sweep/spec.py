"""The sweep spec file (TOML): read, check and plan.

    preset = "small"            # the base preset (default: small)
    max_batch_runs = 64         # most runs trained together as one batched model (default 64)

    [fixed]                     # values every run shares, over the preset's (optional)
    epochs = 4000

    [grid]                      # one run per combination of these lists (at least one list)
    operation = ["add", "sub"]
    train_frac = [0.3, 0.5, 0.7]
    seed = [0, 1]

    [arms.adamw]                # optional: named variants, each crossed with the grid
    [arms.grokfast]             # a value sets a field for the arm's runs,
    grad_filter = "ema"         # a list replaces the grid's list for that arm
    lr = [0.01]                 # (run names start with the arm: grokfast-lr0.01-seed0)

    [analysis]                  # what runs after a run has trained (optional)
    analyze = true              # analyses/<run>/ (default true)
    report = true               # reports/<run>.html (default true; needs analyze)
    basis = "fourier"           # default: the task's own

    [analysis.llc]              # also the LLC of every checkpoint (optional; needs
    chains = 4                  # pip install 'grokinterp[llc]'): llc.csv, llc.json and the
    draws = 100                 # traces in analyses/<run>/; any LLCSettings field (lr,
                                # localization, nbeta, chains, draws, burnin, batch_size, seed),
                                # an empty table for the defaults

    [ray]                       # options of `--executor ray` (optional)
    [slurm]                     # options of `--executor slurm` (optional)

Any RunConfig field but `preset` may appear under [fixed] or [grid]. Everything is checked before
anything runs: an unknown key, a value of the wrong type, an empty list or a run config that does
not validate is a UsageError naming it. Runs are named by their grid values in grid order
(`add-frac0.3-seed0`) and packed into batches that can train as one batched model: runs of one
batch share every field of `grokinterp.training.loop.SHARED_FIELDS` (the architecture among them).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grokinterp.config import FIELDS, RunConfig
from grokinterp.errors import UsageError
from grokinterp.presets import PRESETS, preset, resolve

EXECUTORS = ("local", "ray", "slurm")
EXTRAS = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}
"""executor -> (module it imports, pyproject extra that installs it)."""
DEFAULT_BATCH_RUNS = 64

# key -> (type, default) of the optional tables; a type of `float` takes ints too.
ANALYSIS_KEYS = {
    "analyze": (bool, True),
    "report": (bool, True),
    "basis": (str, None),
    "llc": (dict, None),
}
RAY_KEYS = {
    "num_cpus": (float, 1.0),
    "num_gpus": (float, None),
    "gpu_memory_gb": (float, 16.0),
    "max_retries": (int, 2),
    "local_cpus": (int, None),
}
"""num_cpus: CPUs each batch task asks for. num_gpus: the GPU fraction each batch asks for
(default: from the batch's memory estimate against gpu_memory_gb; 0 when the cluster has no GPU
or --device cpu). max_retries: Ray reruns of a batch whose worker died (each resumes from the
runs' saved state). local_cpus: CPUs of the local cluster started when no --address is given."""
SLURM_KEYS = {
    "partition": (str, None),
    "timeout_min": (int, 240),
    "signal_delay_s": (int, 120),
    "cpus_per_task": (int, 2),
    "gpus_per_node": (int, 0),
    "mem_gb": (float, 16.0),
    "batches_per_task": (int, 4),
    "array_parallelism": (int, 64),
    "max_requeues": (int, 3),
    "additional": (dict, None),
}
"""One job array; each task trains `batches_per_task` batches one after another. A task that is
preempted, or reaches timeout_min (signalled signal_delay_s before), is requeued (at most
max_requeues times on time-outs) and resumes from the runs' saved state. `additional`: more
sbatch options, e.g. {account = "me", qos = "low"}."""
TOP_KEYS = {"preset", "max_batch_runs", "fixed", "grid", "arms", "analysis", "ray", "slurm"}
RENAMED_KEYS = {"max_group_size": "max_batch_runs", "groups_per_task": "batches_per_task"}
"""Keys of specs written before the runs trained together were called a batch -> their name."""


@dataclass(frozen=True)
class PlannedRun:
    name: str
    config: RunConfig
    batch: str
    arm: str = ""
    """The arm (a named variant of [arms]) the run belongs to; "" without arms."""


@dataclass(frozen=True)
class Batch:
    """Runs trained together as one batched model."""

    id: str
    runs: tuple[PlannedRun, ...]

    @property
    def shared(self) -> RunConfig:
        return self.runs[0].config


@dataclass(frozen=True)
class Spec:
    path: Path
    text: str
    base: RunConfig
    fixed: dict[str, Any]
    grid: dict[str, list]
    max_batch_runs: int
    analysis: dict[str, Any]
    ray: dict[str, Any]
    slurm: dict[str, Any]
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """arm name -> its values: a scalar sets a field, a list replaces that field's grid list."""
    runs: list[PlannedRun] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _typed(where: str, value: Any, kind: type) -> Any:
    """`value` as `kind` (an int is a float too; a bool is never a number), else UsageError."""
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (str, bool, dict) and isinstance(value, kind):
        return value
    wanted = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    raise UsageError(
        f"{where} must be {wanted.get(kind, 'a table')}, got {value!r} ({_kind(value)})"
    )


def _options(path: Path, table: str, raw: Any, keys: dict) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: [{table}] must be a table, got {raw!r}")
    unknown = sorted(set(raw) - set(keys))
    if unknown and unknown[0] in RENAMED_KEYS:
        raise UsageError(f"{path}: {table}.{unknown[0]} is now {RENAMED_KEYS[unknown[0]]}")
    if unknown:
        raise UsageError(
            f"{path}: unknown key {table}.{unknown[0]}; known: {', '.join(sorted(keys))}"
        )
    options = {key: default for key, (_, default) in keys.items()}
    for key, value in raw.items():
        options[key] = _typed(f"{path}: {table}.{key}", value, keys[key][0])
    return options


def _check_field(path: Path, table: str, name: str, types: dict) -> None:
    if name == "preset":
        raise UsageError(f"{path}: {table}.preset: name the base preset at the top, not here")
    if name not in types:
        known = ", ".join(n for n in types if n != "preset")
        raise UsageError(f"{path}: unknown run config field {table}.{name}; known: {known}")


def read_spec(path: str | Path) -> Spec:
    """Parse and check a spec file and plan its runs and batches (UsageError on any problem)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the sweep spec ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown and unknown[0] in RENAMED_KEYS:
        raise UsageError(f"{path}: {unknown[0]} is now {RENAMED_KEYS[unknown[0]]}")
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}; known: {', '.join(sorted(TOP_KEYS))}"
        )
    name = _typed(f"{path}: preset", raw.get("preset", "small"), str)
    if name not in PRESETS:
        raise UsageError(f"{path}: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    batch_runs = _typed(
        f"{path}: max_batch_runs", raw.get("max_batch_runs", DEFAULT_BATCH_RUNS), int
    )
    if batch_runs < 1:
        raise UsageError(f"{path}: max_batch_runs must be at least 1, got {batch_runs}")
    types = {name: field.kind for name, field in FIELDS.items()}

    fixed_raw = raw.get("fixed", {})
    if not isinstance(fixed_raw, dict):
        raise UsageError(f"{path}: [fixed] must be a table of run config values")
    fixed = {}
    for key, value in fixed_raw.items():
        _check_field(path, "fixed", key, types)
        fixed[key] = _typed(f"{path}: fixed.{key}", value, types[key])

    grid_raw = raw.get("grid")
    if grid_raw is None or grid_raw == {}:
        raise UsageError(f"{path}: empty grid; list at least one field under [grid]")
    if not isinstance(grid_raw, dict):
        raise UsageError(f"{path}: [grid] must be a table of lists")
    grid: dict[str, list] = {}
    for key, values in grid_raw.items():
        _check_field(path, "grid", key, types)
        if key in fixed:
            raise UsageError(f"{path}: {key} is both under [fixed] and under [grid]")
        if not isinstance(values, list):
            raise UsageError(
                f"{path}: grid.{key} must be a list, got {values!r} (put single values "
                "under [fixed])"
            )
        if not values:
            raise UsageError(f"{path}: grid.{key} is an empty list")
        typed = [_typed(f"{path}: grid.{key}[{i}]", v, types[key]) for i, v in enumerate(values)]
        if len(set(typed)) != len(typed):
            raise UsageError(f"{path}: grid.{key} lists a value twice: {values}")
        grid[key] = typed

    arms = _arms(path, raw.get("arms"), types, fixed)

    analysis = _options(path, "analysis", raw.get("analysis"), ANALYSIS_KEYS)
    if analysis["report"] and not analysis["analyze"]:
        raise UsageError(f"{path}: analysis.report = true needs analysis.analyze = true")
    if analysis["llc"] is not None:
        analysis["llc"] = _llc_settings(path, analysis["llc"])
    ray = _options(path, "ray", raw.get("ray"), RAY_KEYS)
    slurm = _options(path, "slurm", raw.get("slurm"), SLURM_KEYS)
    for key in ("batches_per_task", "array_parallelism", "cpus_per_task"):
        if slurm[key] < 1:
            raise UsageError(f"{path}: slurm.{key} must be at least 1, got {slurm[key]}")
    if slurm["timeout_min"] < 1:
        raise UsageError(
            f"{path}: slurm.timeout_min must be at least 1, got {slurm['timeout_min']}"
        )

    try:
        base = preset(name, fixed.get("group"), fixed.get("model")).replace(**fixed)
    except TypeError as exc:  # pragma: no cover - fields are checked above
        raise UsageError(f"{path}: {exc}") from None
    spec = Spec(path, text, base, fixed, grid, batch_runs, analysis, ray, slurm, arms)
    runs = _runs(spec)
    batches = _pack(runs, batch_runs)
    by_name = {run.name: g.id for g in batches for run in g.runs}
    runs = [PlannedRun(run.name, run.config, by_name[run.name], run.arm) for run in runs]
    if analysis["basis"] is not None:
        _check_basis(path, runs, analysis["basis"])
    if analysis["llc"] is not None:
        for run in runs:
            if run.config.n_train < 1:
                raise UsageError(f"{path}: analysis.llc for run {run.name}: no training pairs")
    return Spec(
        path, text, base, fixed, grid, batch_runs, analysis, ray, slurm, arms, runs, batches
    )


def _arms(path: Path, raw: Any, types: dict, fixed: dict) -> dict[str, dict[str, Any]]:
    """[arms]: name -> {field: value or list}, checked as [fixed] and [grid] are."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"{path}: [arms] must be tables of run config values, one per arm")
    arms = {}
    for name, values in raw.items():
        if not isinstance(values, dict):
            raise UsageError(f"{path}: arms.{name} must be a table of run config values")
        if not name or not all(c.isalnum() or c in "_." for c in name):
            raise UsageError(f"{path}: arm name {name!r}: use letters, digits, '_' and '.'")
        arm = {}
        for key, value in values.items():
            _check_field(path, f"arms.{name}", key, types)
            if key in fixed:
                raise UsageError(f"{path}: {key} is both under [fixed] and under arms.{name}")
            where = f"{path}: arms.{name}.{key}"
            if isinstance(value, list):
                if not value:
                    raise UsageError(f"{where} is an empty list")
                arm[key] = [_typed(f"{where}[{i}]", v, types[key]) for i, v in enumerate(value)]
            else:
                arm[key] = _typed(where, value, types[key])
        arms[name] = arm
    return arms


def run_name(chosen: dict[str, Any]) -> str:
    """`frac0.3-seed1` for {"train_frac": 0.3, "seed": 1}: grid fields in grid order, each by
    its run-name prefix (`grokinterp.schema.Field.name_part`)."""
    return "-".join(FIELDS[k].name_part(v) for k, v in chosen.items())


def _arm_grid(spec: Spec, arm: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any]]:
    """(the grid of an arm's runs, its fixed values): an arm's list replaces or adds a grid
    field; its scalar for a grid field is a list of one (the name still shows it)."""
    grid = dict(spec.grid)
    fixed = {}
    for key, value in arm.items():
        if isinstance(value, list):
            grid[key] = value
        elif key in grid:
            grid[key] = [value]
        else:
            fixed[key] = value
    return grid, fixed


def _runs(spec: Spec) -> list[PlannedRun]:
    from grokinterp.training.recipe import check_recipe

    runs, seen = [], {}
    for arm_name, arm in (spec.arms or {"": {}}).items():
        grid, arm_fixed = _arm_grid(spec, arm)
        for combo in itertools.product(*grid.values()):
            chosen = dict(zip(grid, combo, strict=True))
            name = "-".join(filter(None, (arm_name, run_name(chosen))))
            if name in seen:
                raise UsageError(
                    f"{spec.path}: runs {seen[name]} and {chosen} would share the name "
                    f"{name!r} (values that differ only past 6 significant digits)"
                )
            seen[name] = chosen
            try:
                values = {**arm_fixed, **chosen}
                given = {**spec.fixed, **values}
                cfg = resolve(_base(spec, values).replace(**values), given).validate()
                check_recipe(cfg)
            except UsageError as exc:
                raise UsageError(f"{spec.path}: run {name}: {exc}") from None
            runs.append(PlannedRun(name, cfg, "", arm_name))
    return runs


def _base(spec: Spec, chosen: dict[str, Any]) -> RunConfig:
    """The preset of a run's task kind and model family (a grid over `group` or `model` takes
    each run's own) under the spec's [fixed] values."""
    if not {"group", "model"} & set(chosen):
        return spec.base
    kind = {key: chosen.get(key, spec.fixed.get(key)) for key in ("group", "model")}
    return preset(spec.base.preset, kind["group"], kind["model"]).replace(**spec.fixed)


def batch_key(cfg: RunConfig) -> tuple:
    """What runs trained together must share (grokinterp.training.loop.SHARED_FIELDS; with a
    batch_size, also the number of training pairs)."""
    from grokinterp.training.loop import SHARED_FIELDS

    key = tuple(getattr(cfg, name) for name in SHARED_FIELDS)
    return key if cfg.batch_size is None else (*key, cfg.n_train)


def _pack(runs: list[PlannedRun], max_size: int) -> list[Batch]:
    """Runs that share the batch key, split into near-equal batches of at most `max_size` runs;
    within a key, runs are taken by training-set size (a batch pads every run to its
    longest split), then in run order; keys in the order of their first run."""
    by_key: dict[tuple, list[PlannedRun]] = {}
    for run in runs:
        by_key.setdefault(batch_key(run.config), []).append(run)
    batches = []
    for members in by_key.values():
        members = sorted(members, key=lambda run: run.config.n_train)
        n_batches = math.ceil(len(members) / max_size)
        size, extra = divmod(len(members), n_batches)
        start = 0
        for i in range(n_batches):
            end = start + size + (i < extra)
            batches.append(members[start:end])
            start = end
    width = max(3, len(str(len(batches) - 1)))
    return [
        Batch(
            f"g{i:0{width}d}",
            tuple(PlannedRun(r.name, r.config, f"g{i:0{width}d}") for r in members),
        )
        for i, members in enumerate(batches)
    ]


def _llc_settings(path: Path, raw: dict) -> dict[str, Any]:
    """The checked settings of [analysis.llc] (grokinterp.analysis.llc.estimator.LLCSettings as a
    dict); UsageError for an unknown key, a bad value or a missing devinterp."""
    import importlib.util

    from grokinterp.analysis.llc.estimator import INSTALL_HINT, LLCSettings

    defaults = LLCSettings()
    keys = {
        f.name: (float if "float" in str(f.type) else int, getattr(defaults, f.name))
        for f in fields(LLCSettings)
    }
    settings = _options(path, "analysis.llc", raw, keys)
    try:
        LLCSettings(**settings).validate()
    except UsageError as exc:
        raise UsageError(f"{path}: analysis.llc: {exc}") from None
    if importlib.util.find_spec("devinterp") is None:
        raise UsageError(f"{path}: analysis.llc: {INSTALL_HINT}")
    return settings


def _check_basis(path: Path, runs: list[PlannedRun], name: str) -> None:
    from grokinterp.tasks import task_of

    for run in runs:
        try:
            task_of(run.config).basis(name)
        except UsageError as exc:
            raise UsageError(f"{path}: analysis.basis for run {run.name}: {exc}") from None


def check_executor(executor: str) -> None:
    """UsageError when `executor` is unknown or its optional extra is not installed."""
    import importlib.util

    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor in EXTRAS:
        module, extra = EXTRAS[executor]
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"executor {executor} needs {module}, which is not installed: "
                f"pip install 'grokinterp[{extra}]'"
            )
