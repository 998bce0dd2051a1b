"""The run configuration: one frozen, typed record of everything that defines a run.

Each field is described once, where it is declared (`grokinterp.schema.setting`): its section
(the sub-configs task, model, training, recipe), help, allowed values, run-name prefix and the
condition under which a run reads it. `FIELDS` holds these descriptions; the CLI flags, the sweep
spec's types, run names and docs/config.md are generated from them, and `RunConfig.validate`
checks every field against them. Every other value (vocabulary size, number of training pairs,
...) is derived from the fields by a property, never stored twice. Concrete hyperparameters
appear only in `grokinterp.presets`. This module imports nothing heavy so that
`grokinterp --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from grokinterp.errors import UsageError
from grokinterp.schema import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Field,
    Range,
    fields_of,
    setting,
)

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

MLP_INPUT_FORMATS = ("a-b-eq", "a-b")
"""The formats the mlp family takes: it reads a and b alone (the `=` token has no embedding, so
both are one network); it has no embedding for `op`."""

OLD_ATTENTION_RULE = "uniform-mix"
"""The rule of every config written before `attention_rule` existed (format version 1)."""

FORMAT_VERSION = 2
"""Version 2 writes `attention_rule`; a config of version 1 never has it and reads as
`OLD_ATTENTION_RULE`. A config with that rule is written as version 1 without the field, the
JSON (and run fingerprint) it had before the field existed. Fields declared `sparse` are written
only away from their default, so configs written before them read and hash as before."""

TRANSFORMER = ("model", ("transformer",))
MLP = ("model", ("mlp",))
MUON = ("optimizer", ("muon",))


@dataclass(frozen=True)
class RunConfig:
    """Hyperparameters of one training run of a model (`model`: a transformer, by default Nanda et
    al.'s one-layer one, or an MLP) on `(a op b) mod p`, or on an operation of a finite group
    (`group`). Each field's meaning, range and section are in its `setting` (and `FIELDS`)."""

    preset: str = setting(
        "run",
        "Name of the preset the run started from (`grokinterp.presets`); informational, every "
        "other field holds the run's own value.",
        per_run=True,
    )
    p: int = setting(
        "task",
        "The prime modulus of arithmetic mod p: the element tokens are 0..p-1 (input_format) "
        "(Nanda et al.: 113); a group run keeps its preset's value, never read.",
        range=Range(3),
        only_with=("group", (None,)),
    )
    train_frac: float = setting(
        "task",
        "Fraction of the task's pairs in the training set, the rest being the test set (Nanda et "
        "al.: 0.3).",
        range=Range(0, 1, low_open=True, high_open=True),
        short="frac",
        per_run=True,
        swept=True,
    )
    d_model: int = setting(
        "model",
        "Width of the residual stream (transformer) or of each operand's embedding (mlp); Nanda "
        "et al.: 128.",
        range=AT_LEAST_ONE,
        short="dmodel",
    )
    n_heads: int = setting(
        "model",
        "Attention heads per layer, each of width d_head = d_model / n_heads (Nanda et al.: 4); "
        "an mlp run keeps its preset's value, never read.",
        range=AT_LEAST_ONE,
        short="heads",
        only_with=TRANSFORMER,
    )
    d_mlp: int = setting(
        "model",
        "Neurons of each MLP (hidden) layer (Nanda et al.: 512).",
        range=AT_LEAST_ONE,
        short="dmlp",
    )
    init: str = setting(
        "training",
        "Weight initialisation: `paper`, every matrix randn / sqrt(d_model) and W_U randn / "
        "sqrt(d_vocab) as Nanda et al.'s code (mlp: randn / sqrt(fan-in), Chughtai et al.'s); "
        "`transformer_lens`, N(0, (0.8 / sqrt(d_model))^2) for every matrix; `zhong` "
        "(transformer), `paper` but W_in randn / sqrt(d_mlp), as Zhong et al.'s code (these "
        "three: biases at 0); `pytorch`, PyTorch's defaults: embeddings N(0, 1) (nn.Embedding), "
        "every other weight and bias U(-1/sqrt(k), 1/sqrt(k)) with k the fan-in of its "
        "nn.Linear (Power et al.'s transformer; devinterp's mlp, one Linear per operand in its "
        "first layer).",
        choices=("paper", "transformer_lens", "pytorch", "zhong"),
        short="init-",
        per_run=True,
    )
    lr: float = setting(
        "training",
        "Peak learning rate, reached at the end of the warm-up (Nanda et al.: 1e-3).",
        range=POSITIVE,
        per_run=True,
    )
    weight_decay: float = setting(
        "training",
        "Weight decay of every trained parameter, decoupled in AdamW and Muon, coupled L2 in adam "
        "and sgd (Nanda et al.: 1).",
        range=NON_NEGATIVE,
        short="wd",
        per_run=True,
        swept=True,
    )
    beta1: float = setting(
        "training", "Adam(W)'s first-moment decay (Nanda et al.: 0.9).", range=FRACTION
    )
    beta2: float = setting(
        "training", "Adam(W)'s second-moment decay (Nanda et al.: 0.98).", range=FRACTION
    )
    warmup_steps: int = setting(
        "training",
        "Optimiser steps of linear warm-up: step s (0-based) uses lr * min((s + 1) / "
        "warmup_steps, 1), so the first step already moves the weights (Nanda et al.: 10).",
        range=AT_LEAST_ONE,
        short="warmup",
    )
    epochs: int = setting(
        "training",
        "Passes over the training pairs: one optimiser step each at full batch, ceil(n_train / "
        "batch_size) with a batch_size; with batch_sampling independent, optimiser steps (Nanda "
        "et al.: 40,000).",
        range=AT_LEAST_ONE,
    )
    save_every: int = setting(
        "training",
        "Checkpoint cadence in epochs; epoch 0 and the last epoch are always saved (Nanda et al.: "
        "100).",
        range=AT_LEAST_ONE,
    )
    seed: int = setting(
        "training",
        "Seed of the weight initialisation and of the minibatch order, apart from the split's.",
        per_run=True,
        swept=True,
    )
    data_seed: int = setting(
        "task",
        "Seed of the train/test split and of the label noise, apart from the weights'.",
        short="dseed",
        per_run=True,
        swept=True,
    )
    operation: str = setting(
        "task",
        "The operation: mod p, a key of `grokinterp.tasks.modular.OPERATIONS` (add, sub, mul, "
        "div, polynomials); with a group, compose (a * b), conjugate (a * b * a^-1) or aba "
        "(a * b * a).",
        default="add",
        short="",
    )
    adam_eps: float = setting(
        "training",
        "Adam(W)'s epsilon, added to the square root of the second moment.",
        default=1e-8,
        range=POSITIVE,
    )
    model: str = setting(
        "model",
        "The model family (`grokinterp.models`): `transformer`, Nanda et al.'s, or `mlp`, "
        "Gromov's and Chughtai et al.'s embeddings, hidden layers and unembedding.",
        default="transformer",
        choices=("transformer", "mlp"),
        short="",
        sparse=True,
    )
    n_layers: int = setting(
        "model",
        "Transformer blocks, or hidden layers of the mlp.",
        default=1,
        range=Range(1, 4),
        short="layers",
        sparse=True,
    )
    layer_norm: str = setting(
        "model",
        "`none` (Nanda et al.); `pre`: LayerNorm before each attention, each MLP and the "
        "unembedding (TransformerLens's ln1, ln2, ln_final); `post`: LayerNorm after each "
        "residual sum, x = ln1(x + attn(x)), x = ln2(x + mlp(x)), none before the unembedding "
        "(Power et al.'s code).",
        default="none",
        choices=("none", "pre", "post"),
        only_with=TRANSFORMER,
        sparse=True,
    )
    attention_rate: float = setting(
        "model",
        "Zhong et al.'s (2023, The Clock and the Pizza) attn_coeff c, acting as attention_rule "
        "says: 1 learned attention, 0 constant attention.",
        default=1.0,
        range=Range(0, 1),
        only_with=TRANSFORMER,
        sparse=True,
    )
    attention_rule: str = setting(
        "model",
        "How attention_rate c mixes a head's softmax pattern s over the n keys its query sees: "
        "`zhong`, c s + (1 - c) on each key, as Zhong et al.'s code; `uniform-mix`, c s + "
        "(1 - c) / n, the rule of configs written before this field.",
        default="zhong",
        choices=("zhong", OLD_ATTENTION_RULE),
        only_with=TRANSFORMER,
    )
    positional: str = setting(
        "model",
        "The position embedding added to the token embedding: `learned` W_pos (Nanda et al.) or "
        "`sinusoidal`, the fixed table sin(pos / 10000^(i / d_model)) on even dims i and "
        "cos(pos / 10000^((i - 1) / d_model)) on odd ones (Power et al.'s code), a buffer.",
        default="learned",
        choices=("learned", "sinusoidal"),
        only_with=TRANSFORMER,
        sparse=True,
    )
    biases: str = setting(
        "model",
        "Which biases train: `mlp`, b_in and b_out alone (Nanda et al.), or `none` (Power et "
        "al.'s code: only LayerNorm has a bias); the others stay in the state dict at zero.",
        default="mlp",
        choices=("mlp", "none"),
        only_with=TRANSFORMER,
        sparse=True,
    )
    activation: str = setting(
        "model",
        "The neurons' nonlinearity: `relu`, `gelu` (the exact erf form) or `quadratic` (x^2, "
        "Gromov 2023).",
        default="relu",
        choices=("relu", "gelu", "quadratic"),
        sparse=True,
    )
    embedding: str = setting(
        "model",
        "One embedding table for a and b (`shared`) or one each (`separate`, Chughtai et al.).",
        default="shared",
        choices=("shared", "separate"),
        only_with=MLP,
        sparse=True,
    )
    combine: str = setting(
        "model",
        "How the first hidden layer reads the two embeddings: concatenated (`concat`) or summed "
        "(`sum`).",
        default="concat",
        choices=("concat", "sum"),
        only_with=MLP,
        sparse=True,
    )
    first_bias: str = setting(
        "model",
        "Biases of the first hidden layer: `none` (Gromov, Chughtai et al.) or `per-operand`, a "
        "bias b_in_a on a's side and b_in_b on b's, both added before the activation and each "
        "trained (devinterp's linear1l and linear1r biases; under Adam two summed biases move "
        "unlike one).",
        default="none",
        choices=("none", "per-operand"),
        only_with=MLP,
        sparse=True,
    )
    input_format: str = setting(
        "model",
        "How a pair is written as tokens (`grokinterp.config.INPUT_FORMATS`): `a-b-eq` [a, b, =] "
        "(Nanda et al.), `a-b` [a, b] (Zhong et al.) or `a-op-b-eq` [a, op, b, =] (Power et "
        "al.'s core); the answer is read at the last position; the mlp takes a-b-eq or a-b.",
        default="a-b-eq",
        choices=tuple(INPUT_FORMATS),
        short="",
        sparse=True,
    )
    objective: str = setting(
        "recipe",
        "The training loss: `cross_entropy`, `stablemax` (cross-entropy through Prieto et al.'s "
        "2025 StableMax) or `mse` (squared error to the one-hot target); metrics.csv records the "
        "cross-entropy whatever it is.",
        default="cross_entropy",
        choices=("cross_entropy", "stablemax", "mse"),
        short="",
        sparse=True,
    )
    temperature: float = setting(
        "recipe",
        "The objective sees logits / temperature (a fixed output temperature).",
        default=1.0,
        range=POSITIVE,
        short="T",
        sparse=True,
    )
    label_noise: float = setting(
        "recipe",
        "Fraction of the training pairs whose label is replaced by another, drawn uniformly "
        "from data_seed and recorded in split.json.",
        default=0.0,
        range=FRACTION,
        per_run=True,
        sparse=True,
    )
    optimizer: str = setting(
        "recipe",
        "`adamw` (PyTorch's formulation, written out), `adam` (torch.optim.Adam: weight decay as "
        "coupled L2, added to the gradient), `sgd` (momentum, coupled L2 weight decay) or `muon` "
        "(torch.optim.Muon on muon_params, AdamW on the rest).",
        default="adamw",
        choices=("adamw", "adam", "sgd", "muon"),
        short="",
        sparse=True,
    )
    momentum: float | None = setting(
        "recipe",
        "Momentum of sgd and muon; null: the optimiser's default (sgd 0.9, muon 0.95).",
        default=None,
        range=FRACTION,
        only_with=("optimizer", ("sgd", "muon")),
        sparse=True,
    )
    muon_params: str = setting(
        "recipe",
        "The matrices Muon updates: `hidden` (every trained matrix but the embeddings and the "
        "unembedding, as Muon's authors do) or a comma-separated list of trained matrix names.",
        default="hidden",
        only_with=MUON,
        sparse=True,
    )
    perpendicular_grad: bool = setting(
        "recipe",
        "Prieto et al.'s ⊥Grad: remove each parameter's gradient component along its weights "
        "(and restore the gradient's norm) before the optimiser.",
        default=False,
        short="perp",
        sparse=True,
    )
    grad_filter: str = setting(
        "recipe",
        "Lee et al.'s (2024) Grokfast gradient filter: `none`, `ema` (filter_alpha, "
        "filter_lambda) or `ma` (filter_window, filter_lambda).",
        default="none",
        choices=("none", "ema", "ma"),
        short="filter-",
        sparse=True,
    )
    filter_alpha: float = setting(
        "recipe",
        "Grokfast-EMA's decay alpha.",
        default=0.98,
        range=FRACTION,
        only_with=("grad_filter", ("ema",)),
        sparse=True,
    )
    filter_window: int = setting(
        "recipe",
        "Grokfast-MA's window: the number of past gradients it averages.",
        default=100,
        range=AT_LEAST_ONE,
        only_with=("grad_filter", ("ma",)),
        sparse=True,
    )
    filter_lambda: float | None = setting(
        "recipe",
        "Grokfast's amplification lambda of the filtered gradient; null: the paper's default "
        "(ema 2, ma 5).",
        default=None,
        only_with=("grad_filter", ("ema", "ma")),
        sparse=True,
    )
    fixed_norm: float | None = setting(
        "recipe",
        "Omnigrok (Liu et al. 2022): the total L2 norm of the trained weights, held fixed by a "
        "rescale after the init and after every step; null: free.",
        default=None,
        range=POSITIVE,
        short="norm",
        sparse=True,
    )
    norm_cap: float | None = setting(
        "recipe",
        "A downward-only cap: each trained matrix is scaled back to norm_cap times its initial "
        "norm whenever it exceeds it; null: no cap.",
        default=None,
        range=POSITIVE,
        sparse=True,
    )
    precision: str = setting(
        "recipe",
        "dtype of the training forward; the weights stay float32 and the losses float64.",
        default="float32",
        choices=("float32", "float64", "bfloat16"),
        sparse=True,
    )
    group: str | None = setting(
        "task",
        "A finite group whose operation is the task (`grokinterp.tasks.groups`: S3..S5, A4, A5, "
        "`D<n>`, `Z<n>xZ<m>...`), its elements in canonical order as tokens 0..|G|-1; null: "
        "arithmetic mod p.",
        default=None,
        sparse=True,
    )
    batch_size: int | None = setting(
        "training",
        "Training pairs per optimiser step, 1..n_train, visited in an order fixed by (seed, "
        "epoch); null: full batch, one step per epoch.",
        default=None,
        range=AT_LEAST_ONE,
        sparse=True,
    )
    batch_sampling: str = setting(
        "training",
        "How minibatches are drawn: `epoch`, each epoch a permutation of the training pairs cut "
        "into batches; `independent`, each optimiser step a fresh random batch_size-subset, "
        "drawn from (seed, step) alone, and one step per epoch (devinterp's grokking example); "
        "needs a batch_size.",
        default="epoch",
        choices=("epoch", "independent"),
        sparse=True,
    )

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

    def part(self, section: str) -> dict[str, Any]:
        """The sub-config `section` (`grokinterp.schema.SECTIONS`) as {field: value}, holding
        only the fields this run reads: the model part of an mlp has no n_heads, the recipe of
        AdamW no momentum."""
        return {
            f.name: getattr(self, f.name)
            for f in FIELDS.values()
            if f.section == section and reads(self, f.name)
        }

    # ---- validation and (de)serialisation -----------------------------------------------------
    def validate(self) -> RunConfig:
        """Raise UsageError naming the first invalid field; return self when all is well. Each
        field is checked against its type, range and choices (`FIELDS`); a field written only
        away from its default may leave it only where the run reads it (`reads`)."""
        self._check_task()
        for f in FIELDS.values():
            f.check(getattr(self, f.name))
        check_read(
            self,
            [f.name for f in FIELDS.values() if f.sparse and getattr(self, f.name) != f.default],
        )
        if not 1 <= self.n_train < self.n_pairs:
            task = f"in {self.group}" if self.group is not None else f"mod {self.p}"
            raise UsageError(
                f"train fraction {self.train_frac} of the {self.n_pairs} pairs of operation "
                f"{self.operation!r} {task} leaves an empty split"
            )
        if self.batch_size is not None and self.batch_size > self.n_train:
            raise UsageError(
                f"batch_size must lie in 1..{self.n_train} (the training pairs), "
                f"got {self.batch_size}"
            )
        if self.model == "mlp" and self.input_format not in MLP_INPUT_FORMATS:
            raise UsageError(
                f"model mlp does not take input_format {self.input_format!r} (--input-format); "
                f"it takes {', '.join(MLP_INPUT_FORMATS)}"
            )
        if self.batch_sampling == "independent" and self.batch_size is None:
            raise UsageError("batch_sampling independent draws minibatches: give a batch_size")
        if self.model == "mlp" and self.init == "zhong":
            raise UsageError("init zhong is a transformer's (Zhong et al.'s W_in); not for an mlp")
        if self.model == "transformer" and self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.fixed_norm is not None and self.norm_cap is not None:
            raise UsageError("norm_cap caps a norm that fixed_norm holds fixed: choose one")
        return self

    def _check_task(self) -> None:
        """The operation of the task kind, the group's name and a prime p."""
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

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields in declaration order, those declared `sparse` only away from their
        default, after `format_version` (see `FORMAT_VERSION`)."""
        data = dataclasses.asdict(self)
        for f in FIELDS.values():
            if f.sparse and data[f.name] == f.default:
                del data[f.name]
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
        unknown = sorted(set(data) - set(FIELDS))
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
        and the same computation (every model field; the attention rule where the rate is not
        1, at which both rules are one computation)."""
        model = (f.name for f in FIELDS.values() if f.section == "model")
        keys = ("d_vocab", "d_vocab_out", *(name for name in model if name != "attention_rule"))
        same_rule = self.attention_rate == 1.0 or self.attention_rule == other.attention_rule
        return same_rule and all(getattr(self, k) == getattr(other, k) for k in keys)


FIELDS: dict[str, Field] = fields_of(RunConfig)
"""Every field of `RunConfig` by name, in declaration order, with its description."""


def reads(cfg: RunConfig, name: str) -> bool:
    """Whether a run of `cfg` reads field `name` (its `only_with` condition holds)."""
    condition = FIELDS[name].only_with
    return condition is None or getattr(cfg, condition[0]) in condition[1]


def check_read(cfg: RunConfig, names: Iterable[str]) -> None:
    """UsageError naming the first of the fields `names` that a run of `cfg` never reads (an
    mlp has no n_heads, AdamW no momentum), with its flag."""
    for name in names:
        if reads(cfg, name):
            continue
        f = FIELDS[name]
        other, values = f.only_with  # type: ignore[misc]
        if other == "model":
            raise UsageError(f"model {cfg.model} has no part for {name} ({f.flag})")
        if values == (None,):
            raise UsageError(f"{name} ({f.flag}) applies only without {FIELDS[other].flag}")
        wanted = " or ".join(map(str, values))
        raise UsageError(f"{name} ({f.flag}) applies only with {FIELDS[other].flag} {wanted}")


def foreign_fields(family: str) -> set[str]:
    """The model fields that a model of `family` never reads (n_heads for an mlp)."""
    return {
        f.name
        for f in FIELDS.values()
        if f.only_with is not None and f.only_with[0] == "model" and family not in f.only_with[1]
    }


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))
