"""The run configuration: one frozen, typed record of everything that defines a run.

Every other value (vocabulary size, number of training pairs, ...) is derived from it by a
property, never stored twice. Presets are the only place concrete hyperparameters appear.
This module imports nothing heavy so that `grokinterp --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from grokinterp.errors import UsageError

INITS = ("paper", "transformer_lens")

INPUT_FORMATS = {
    "a-b-eq": ("a", "b", "="),
    "a-b": ("a", "b"),
    "a-op-b-eq": ("a", "op", "b", "="),
}
"""Input format name -> what each position of the input holds: operand `a`, operand `b`, the
token `=`, or the operation's token `op`. The answer is read at the last position. Element tokens
are 0..n-1 (n = `RunConfig.n_elements`); the symbols that a format has take the ids after them,
`=` first (`RunConfig.symbol_ids`):
- `a-b-eq`: `[a, b, =]`, `=` = n; Nanda et al.'s input (d_vocab n + 1, n_ctx 3).
- `a-b`: `[a, b]`, no symbol, the answer read at b's position; Zhong et al.'s (2023) default
  input, their `eqn_sign = 0` (d_vocab n, n_ctx 2).
- `a-op-b-eq`: `[a, op, b, =]`, `=` = n, op = n + 1 (one token: a run trains one operation);
  the four-token core of Power et al.'s (2022) `<eos> a op b = c <eos>` (d_vocab n + 2,
  n_ctx 4)."""

SYMBOL_ORDER = ("=", "op")
"""The order in which a format's symbols take the token ids after the elements."""

OLD_ATTENTION_RULE = "uniform-mix"
"""The rule of every config written before `attention_rule` existed (format version 1)."""

ARCHITECTURE_DEFAULTS = {
    "model": "transformer",
    "n_layers": 1,
    "layer_norm": "none",
    "attention_rate": 1.0,
    "activation": "relu",
    "embedding": "shared",
    "combine": "concat",
    "input_format": "a-b-eq",
}
"""The architecture fields at their defaults (Nanda et al.'s one-layer transformer). A field at
its default is left out of the JSON, so configs written before architectures read and hash as
before."""

RECIPE_DEFAULTS = {
    "objective": "cross_entropy",
    "temperature": 1.0,
    "label_noise": 0.0,
    "optimizer": "adamw",
    "momentum": None,
    "muon_params": "hidden",
    "perpendicular_grad": False,
    "grad_filter": "none",
    "filter_alpha": 0.98,
    "filter_window": 100,
    "filter_lambda": None,
    "fixed_norm": None,
    "norm_cap": None,
    "precision": "float32",
}
"""The training-recipe fields at their defaults (cross-entropy, AdamW, no filter, no norm control,
a float32 forward: the recipe of before interventions). As with the architecture, a field at its
default is left out of the JSON, so older configs read and hash as before. Validated and applied
by `grokinterp.training.recipe`."""

FORMAT_VERSION = 2
"""Version 2 writes `attention_rule`; a config of version 1 never has it and reads as
`OLD_ATTENTION_RULE`. A config with that rule is written as version 1 without the field, the
JSON (and run fingerprint) it had before the field existed."""


@dataclass(frozen=True)
class RunConfig:
    """Hyperparameters of one training run of a model (`model`: a transformer, by default Nanda et
    al.'s one-layer one, or an MLP) on `(a op b) mod p`, or on an operation of a finite group
    (`group`)."""

    preset: str
    """Name of the preset the run started from (informational)."""
    p: int
    """The prime modulus: the element tokens are 0..p-1 (`input_format`). Unused by a group run
    (`group` set), which keeps its preset's value: it is still validated, never read."""
    train_frac: float
    """Fraction of the pairs used for training (the rest is the test set)."""
    d_model: int
    """Width of the residual stream (transformer); width of each operand's embedding (mlp)."""
    n_heads: int
    """Number of attention heads; `d_head = d_model // n_heads`. Unused by the mlp family, which
    keeps its preset's value: validated, never read."""
    d_mlp: int
    """Number of neurons of each MLP (hidden) layer."""
    init: Literal["paper", "transformer_lens"]
    """`paper`: every matrix randn / sqrt(d_model), W_U randn / sqrt(d_vocab), as in Nanda et al.'s
    code. `transformer_lens`: N(0, (0.8 / sqrt(d_model))^2) for every matrix. Biases start at 0."""
    lr: float
    """Peak learning rate of AdamW."""
    weight_decay: float
    """AdamW's decoupled weight decay (applied to every trained parameter)."""
    beta1: float
    """AdamW's first-moment decay."""
    beta2: float
    """AdamW's second-moment decay."""
    warmup_steps: int
    """Linear warm-up: the lr of step s (0-based) is lr * min((s + 1) / warmup_steps, 1), so unlike
    the public code the first step already moves the weights."""
    epochs: int
    """Number of epochs, passes over the training pairs: one optimiser step each at full batch,
    ceil(n_train / batch_size) each with `batch_size`."""
    save_every: int
    """Checkpoint cadence in epochs; epoch 0 and the last epoch are always saved."""
    seed: int
    """Seed of the weight initialisation."""
    data_seed: int
    """Seed of the train/test split, separate from the weight seed."""
    operation: str = "add"
    """The operation mod p, a key of `grokinterp.tasks.modular.OPERATIONS` (`add`, `sub`, `mul`,
    `div`, polynomials): its label table and domain define the task (`grokinterp.tasks`). With
    `group`, an operation of the group: `compose` (a * b), `conjugate` (a * b * a^-1) or `aba`."""
    adam_eps: float = 1e-8
    """AdamW's epsilon."""
    model: str = "transformer"
    """The model family, a key of `grokinterp.models.FAMILIES`: `transformer` or `mlp`."""
    n_layers: int = 1
    """Transformer blocks (1..4), or hidden layers of the mlp (1..4)."""
    layer_norm: str = "none"
    """Transformer only: `none` (Nanda et al.) or `pre` (LayerNorm before each attention, MLP
    and the unembedding, TransformerLens's names `ln1`, `ln2`, `ln_final`)."""
    attention_rate: float = 1.0
    """Transformer only, in [0, 1]: Zhong et al.'s (2023, "The Clock and the Pizza") `attn_coeff`
    c, under `attention_rule`: 1 learned attention, 0 constant attention."""
    attention_rule: str = "zhong"
    """How `attention_rate` acts (`grokinterp.models.layers.ATTENTION_RULES`): `zhong`,
    c * softmax + (1 - c) on each key the query may see, as Zhong et al.'s code; `uniform-mix`,
    c * softmax + (1 - c) / n over its n visible keys, the rule of configs written before this
    field (read as such)."""
    activation: str = "relu"
    """The neurons' nonlinearity: `relu`, `gelu` or `quadratic` (x^2, Gromov 2023)."""
    embedding: str = "shared"
    """MLP only: one embedding table for a and b (`shared`) or one each (`separate`)."""
    combine: str = "concat"
    """MLP only: the hidden layer reads the two embeddings concatenated (`concat`) or summed
    (`sum`)."""
    objective: str = "cross_entropy"
    """The training loss: `cross_entropy`, `stablemax` (cross-entropy through Prieto et al.'s
    StableMax) or `mse` (mean squared error to the one-hot target); see
    `grokinterp.training.recipe.objectives`. metrics.csv always records the cross-entropy."""
    temperature: float = 1.0
    """The objective sees logits / temperature (a fixed output temperature, > 0)."""
    label_noise: float = 0.0
    """Fraction in [0, 1) of the training pairs whose label is replaced by a uniformly drawn
    other label (from `data_seed`); the replaced labels are recorded in split.json."""
    optimizer: str = "adamw"
    """`adamw` (written out, PyTorch's formulation), `sgd` (torch.optim.SGD: momentum, coupled L2
    weight decay) or `muon` (torch.optim.Muon on `muon_params`, AdamW on the rest)."""
    momentum: float | None = None
    """Momentum of sgd and muon; None: the optimiser's default (sgd 0.9, muon 0.95)."""
    muon_params: str = "hidden"
    """Muon only: `hidden` (every trained matrix but the embeddings and the unembedding, as Muon's
    authors do) or a comma-separated list of trained matrix names."""
    perpendicular_grad: bool = False
    """Prieto et al.'s ⊥Grad: remove each parameter's gradient component along its weights (and
    restore the gradient's norm) before the optimiser."""
    grad_filter: str = "none"
    """Lee et al.'s Grokfast: `none`, `ema` (alpha, lambda) or `ma` (window, lambda)."""
    filter_alpha: float = 0.98
    """Grokfast-EMA's decay alpha, in [0, 1)."""
    filter_window: int = 100
    """Grokfast-MA's window of past gradients."""
    filter_lambda: float | None = None
    """Grokfast's amplification lambda; None: the paper's default (ema 2, ma 5)."""
    fixed_norm: float | None = None
    """Omnigrok: the total L2 norm of the trained weights, held fixed by a rescale after the init
    and after every step; None: free."""
    norm_cap: float | None = None
    """A downward-only cap: each trained matrix is scaled down to norm_cap x its initial norm
    when it exceeds it; None: no cap."""
    precision: str = "float32"
    """dtype of the training forward: `float32`, `float64` or `bfloat16`. The weights stay
    float32 and the losses float64."""
    group: str | None = None
    """A finite group whose operation is the task (`S5`, `A4`, `D7`, `Z3xZ5`; see
    `grokinterp.tasks.groups`), or None: arithmetic mod p. The element tokens are the group's
    elements in canonical order, 0..|G|-1 (`input_format`). Left out of the JSON when None, so
    configs written before groups read and hash as before."""
    batch_size: int | None = None
    """Training pairs per optimiser step, in 1..n_train (`grokinterp.training.loop.epoch_batches`),
    or None: full batch, one step per epoch. Left out of the JSON when None, so configs written
    before minibatches read and hash as before."""
    input_format: str = "a-b-eq"
    """How a pair (a, b) is written as tokens, a key of `INPUT_FORMATS`: `a-b-eq` ([a, b, =]),
    `a-b` ([a, b]) or `a-op-b-eq` ([a, op, b, =]); d_vocab and n_ctx follow from it. The mlp
    family reads a and b alone and takes `a-b-eq` (its `=` is read by no part of it) or `a-b`,
    the same network; `a-op-b-eq` is refused for it (it has no embedding for `op`). Left out of
    the JSON at its default, so configs written before formats read and hash as before."""

    # ---- derived values -----------------------------------------------------------------------
    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_elements(self) -> int:
        """Element tokens: the p residues, or the |G| elements of the group (from its name)."""
        if self.group is None:
            return self.p
        from grokinterp.tasks.groups import group_order

        return group_order(self.group)

    @property
    def input_layout(self) -> tuple[str, ...]:
        """What each input position holds (`INPUT_FORMATS`), e.g. ("a", "b", "=")."""
        return INPUT_FORMATS[self.input_format]

    @property
    def symbol_ids(self) -> dict[str, int]:
        """Token id of each symbol of the input format: n, n + 1, ... in `SYMBOL_ORDER`."""
        symbols = [name for name in SYMBOL_ORDER if name in self.input_layout]
        return {name: self.n_elements + i for i, name in enumerate(symbols)}

    @property
    def d_vocab(self) -> int:
        """Input vocabulary: the elements and the input format's symbols."""
        return self.n_elements + len(self.symbol_ids)

    @property
    def d_vocab_out(self) -> int:
        """Output classes: the elements."""
        return self.n_elements

    @property
    def n_ctx(self) -> int:
        """Input positions; the answer is read at the last."""
        return len(self.input_layout)

    @property
    def eq_token(self) -> int:
        """The id of `=` in the formats that have it (n)."""
        return self.n_elements

    @property
    def n_pairs(self) -> int:
        """Pairs (a, b) in the operation's domain (p^2 for addition, |G|^2 for a group)."""
        if self.group is not None:
            return self.n_elements**2
        from grokinterp.tasks.modular import domain_size

        return domain_size(self.operation, self.p)

    @property
    def n_train(self) -> int:
        return int(self.train_frac * self.n_pairs)

    @property
    def save_epochs(self) -> list[int]:
        """Epochs at which a checkpoint is written: 0, save_every, 2 * save_every, ..., epochs."""
        return sorted(set(range(0, self.epochs, self.save_every)) | {self.epochs})

    # ---- validation and (de)serialisation -----------------------------------------------------
    def validate(self) -> RunConfig:
        """Raise UsageError naming the first invalid field; return self when all is well."""
        from grokinterp.tasks.groups import GROUP_OPERATIONS, parse_group
        from grokinterp.tasks.modular import OPERATIONS

        if self.group is not None:
            parse_group(self.group)
            if self.operation not in GROUP_OPERATIONS:
                raise UsageError(
                    f"operation {self.operation!r} is not an operation of group {self.group}; "
                    f"choose one of {', '.join(GROUP_OPERATIONS)}"
                )
        elif self.operation not in OPERATIONS:
            raise UsageError(
                f"unknown operation {self.operation!r}; known: {', '.join(OPERATIONS)}"
                + (f" (with a group: {', '.join(GROUP_OPERATIONS)})")
            )
        if not isinstance(self.p, int) or self.p < 3 or not is_prime(self.p):
            raise UsageError(f"p must be a prime >= 3, got {self.p}")
        for name in (
            "train_frac",
            "lr",
            "weight_decay",
            "beta1",
            "beta2",
            "adam_eps",
            "attention_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise UsageError(f"{name} must be a finite number, got {value}")
        if not 0.0 < self.train_frac < 1.0:
            raise UsageError(f"train fraction must lie in (0, 1), got {self.train_frac}")
        if not 1 <= self.n_train < self.n_pairs:
            task = f"in {self.group}" if self.group is not None else f"mod {self.p}"
            raise UsageError(
                f"train fraction {self.train_frac} of the {self.n_pairs} pairs of operation "
                f"{self.operation!r} {task} leaves an empty split"
            )
        if self.batch_size is not None:
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
                raise UsageError(f"batch_size must be a whole number, got {self.batch_size!r}")
            if not 1 <= self.batch_size <= self.n_train:
                raise UsageError(
                    f"batch_size must lie in 1..{self.n_train} (the training pairs), "
                    f"got {self.batch_size}"
                )
        for name in ("epochs", "save_every", "d_model", "n_heads", "d_mlp", "warmup_steps"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be positive, got {getattr(self, name)}")
        if self.model == "transformer" and self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.lr <= 0 or self.weight_decay < 0 or self.adam_eps <= 0:
            raise UsageError("lr and adam_eps must be positive and weight_decay non-negative")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise UsageError(f"betas must lie in [0, 1), got ({self.beta1}, {self.beta2})")
        if self.init not in INITS:
            raise UsageError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if self.input_format not in INPUT_FORMATS:
            raise UsageError(
                f"unknown input_format {self.input_format!r}; choose one of "
                f"{', '.join(INPUT_FORMATS)}"
            )
        from grokinterp.models import validate
        from grokinterp.training.recipe import validate as validate_recipe

        validate(self)
        validate_recipe(self)
        return self

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["group"] is None:  # modular arithmetic: the JSON of before groups
            del data["group"]
        if data["batch_size"] is None:  # full batch: the JSON of before minibatches
            del data["batch_size"]
        for name, default in (ARCHITECTURE_DEFAULTS | RECIPE_DEFAULTS).items():
            if data[name] == default:  # the default model and recipe: the JSON of before them
                del data[name]
        if data["attention_rule"] == OLD_ATTENTION_RULE:  # a run of before the rule: its JSON
            del data["attention_rule"]
            return {"format_version": 1, **data}
        return {"format_version": FORMAT_VERSION, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        version = data.pop("format_version", None)
        if version not in (1, FORMAT_VERSION):
            raise UsageError(f"unsupported run config format version {version!r}")
        if version == 1 and "attention_rule" in data:
            raise UsageError("run config format version 1 has no attention_rule field")
        data.setdefault("attention_rule", OLD_ATTENTION_RULE)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown run config fields: {', '.join(unknown)}")
        try:
            return cls(**data).validate()
        except TypeError as exc:  # a missing field
            raise UsageError(f"incomplete run config: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"run config is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError("run config JSON must be an object")
        return cls.from_dict(data)

    def same_architecture(self, other: RunConfig) -> bool:
        """True when both configs give the same model: same family, parameters of the same shapes
        and the same computation."""
        keys = ("d_vocab", "d_vocab_out", "d_model", "n_heads", "d_mlp", *ARCHITECTURE_DEFAULTS)
        same_rule = self.attention_rate == 1.0 or self.attention_rule == other.attention_rule
        return same_rule and all(getattr(self, k) == getattr(other, k) for k in keys)


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


# Nanda et al. (ICLR 2023), the canonical grokking run: see shared REFERENCE.md.
_CANONICAL = RunConfig(
    preset="canonical",
    p=113,  # the canonical preset
    train_frac=0.3,
    d_model=128,
    n_heads=4,
    d_mlp=512,
    init="paper",
    lr=1e-3,
    weight_decay=1.0,
    beta1=0.9,
    beta2=0.98,
    warmup_steps=10,
    epochs=40_000,
    save_every=100,
    seed=0,
    data_seed=0,
)

PRESETS: dict[str, RunConfig] = {
    "canonical": _CANONICAL,
    # Groks on a 2-core CPU in under a minute (measured numbers in the README).
    "small": _CANONICAL.replace(
        preset="small", p=59, d_model=64, d_mlp=256, lr=1e-2, epochs=4_000, save_every=50
    ),
}

# Chughtai et al. (ICML 2023), their code's `rep_theory/batch_experiments/*_MLP_*/cfg.json`:
# embeddings of a and b of width 256 each, concatenated, 128 ReLU neurons, AdamW lr 1e-3, weight
# decay 1; they train 250,000 epochs (the README's MLP group study: S4 at 70% groks by epoch 9,100
# in four seeds).
_GROUP_CANONICAL = _CANONICAL.replace(
    operation="compose",
    train_frac=0.7,
    model="mlp",
    embedding="separate",
    d_model=256,
    d_mlp=128,
    epochs=25_000,
    save_every=250,
)

GROUP_PRESETS: dict[str, RunConfig] = {
    "canonical": _GROUP_CANONICAL,
    # The same MLP at lr 1e-2 and weight decay 3: S4 groks on a 2-core CPU in a few minutes
    # (measured numbers in the README, "Finite groups").
    "small": _GROUP_CANONICAL.replace(
        preset="small", p=59, lr=1e-2, weight_decay=3.0, epochs=2_000, save_every=50
    ),
}
"""The presets of a finite-group run (`group` set, which the preset leaves to the caller): the
task kind needs a larger training fraction and other settings than arithmetic mod p; `p` keeps
the modular preset's value (validated, never read). Same names as `PRESETS`."""

DEFAULT_PRESET = "small"


def preset(name: str, group: str | None = None, model: str | None = None) -> RunConfig:
    """The preset `name` for the task kind: arithmetic mod p (`group` None, `PRESETS`) or
    composition in `group` (`GROUP_PRESETS`, with `group` set). `model`, when it names another
    family than the preset's, switches to it and puts the architecture fields that family has no
    part for back to their defaults (a transformer has no `embedding`). UsageError for an
    unknown name."""
    table = PRESETS if group is None else GROUP_PRESETS
    try:
        cfg = table[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    if group is not None:
        cfg = cfg.replace(group=group)
    if model is not None and model != cfg.model:
        from grokinterp.models import FAMILIES, foreign_fields

        if model in FAMILIES:  # an unknown family is refused by `validate`
            foreign = foreign_fields(model) & set(ARCHITECTURE_DEFAULTS)
            reset = {k: ARCHITECTURE_DEFAULTS[k] for k in foreign}
            cfg = cfg.replace(model=model, **reset)
    return cfg
