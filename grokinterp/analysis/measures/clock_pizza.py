"""Clock or pizza: the two diagnostics of Zhong, Liu, Tegmark and Andreas (NeurIPS 2023), "The
Clock and the Pizza: Two Stories in Mechanistic Explanation of Neural Networks", section 4.

A clock (Nanda et al.'s algorithm) rotates the embedding of a by the angle of b: its logits are
products such as cos(w a) cos(w b), and the logit of the right answer does not depend on the
difference a - b. A pizza averages the two embeddings, (E_a + E_b) / 2, which lies at radius
|cos(w (a - b) / 2)| inside the circle, and reads the answer off the average: the network treats
its two operands alike, and the logit of the right answer depends on a - b.

- **Gradient symmetricity** (their Definition 4.1):
      s_g = 1/|S| sum_{(a, b, c) in S} cos(dQ_abc / dE_a, dQ_abc / dE_b),
  Q_abc the logit of class c on input (a, b), E_a and E_b the embedding vectors of the two
  operands as they enter the network, cos the cosine similarity, S a random sample of triples
  (their code: 100 triples, c any class, not only the answer). Range [-1, 1]. A network that
  depends on its operands through E_a + E_b alone (constant attention, an MLP on the summed
  embeddings: a pizza) has s_g = 1; a clock Q = E_a^T M_c E_b with M_c orthogonal gives
  cos(w (a - b)) per triple, about 0 on average.
- **Distance irrelevance** (their Definition 4.2): with L(a, b) = Q_{a, b, a+b} the logit of the
  right answer,
      q = mean_d std_{(a, b): a - b = d} L(a, b) / std_{(a, b)} L(a, b),
  the population standard deviation within each class of pairs at the same distance d, averaged
  over the classes, over that of all pairs. Range [0, 1] (every class has as many pairs, so the
  mean within-class variance is at most the total variance): near 1 when L does not depend on
  a - b (clock), near 0 when it is a function of a - b (pizza).

Both are defined for (a + b) mod p. grokinterp computes them for every task whose labels are
a commutative group's composition, with the distance a b^-1 read off the task's own table:
`add` (distance a - b), `mul` (Z_p^* is cyclic, the discrete-log clock: distance a / b) and
`compose` in an abelian group (`Z<n>xZ<m>...`); the other tasks are not applicable.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from grokinterp import data
from grokinterp.models import Architecture
from grokinterp.tasks import Task

SAMPLE_SIZE = 100
"""Triples (a, b, c) behind the gradient symmetricity (as in Zhong et al.'s code)."""

SAMPLE_SEED = 0
"""Seed of the triple sample: the same triples at every checkpoint of a run."""


def not_applicable(task: Task) -> str | None:
    """Why the diagnostics do not apply to `task`, or None when they do: its labels must compose
    in a group (`task.group`) and commute."""
    if task.group is not None and task.commutative:
        return None
    return (
        "clock and pizza are defined for a commutative group operation (a + b or a * b mod p, "
        f"composition in an abelian group), not {task.formula}"
    )


def operand_distance(task: Task) -> Int[Tensor, " pairs"]:
    """int64 [pairs]: the distance a b^-1 between the operands of each domain pair (domain
    order), from the task's table: (a - b) mod p for addition, a * b^-1 mod p for
    multiplication. ValueError when the operands hold no identity or no inverse."""
    elements = task.operands[0]
    square = task.table[elements][:, elements]  # labels of the operand set with itself
    identity = [i for i in range(len(elements)) if torch.equal(square[i], elements)]
    if not identity:
        raise ValueError(f"{task.formula}: the operands hold no identity")
    is_identity = square == elements[identity[0]]  # [x, b]: x b = e
    if not torch.equal(is_identity.sum(dim=0), torch.ones(len(elements), dtype=torch.int64)):
        raise ValueError(f"{task.formula}: an operand has no inverse")
    inverse = elements[is_identity.int().argmax(dim=0)]  # of each operand, by position
    position = torch.full((task.n_elements,), -1, dtype=torch.int64)
    position[elements] = torch.arange(len(elements))
    n = task.n_elements
    a, b = task.domain // n, task.domain % n
    return task.table[a, inverse[position[b]]]


def distance_irrelevance(
    logits: Float[Tensor, "ckpt pairs classes"],
    labels: Int[Tensor, " pairs"],
    distance: Int[Tensor, " pairs"],
) -> Float[Tensor, " ckpt"]:
    """q of every checkpoint (float64): the mean, over the distance classes, of the population
    standard deviation of the right answer's logit within the class, over its standard deviation
    on all pairs. NaN where the right answer's logit is constant."""
    correct = logits.double().gather(2, labels.expand(logits.shape[0], -1)[..., None])[..., 0]
    classes = torch.unique(distance)
    within = torch.stack([correct[:, distance == d].std(dim=1, correction=0) for d in classes])
    return within.mean(dim=0) / correct.std(dim=1, correction=0)


def sample_triples(
    task: Task, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> tuple[Int[Tensor, " s"], Int[Tensor, " s"], Int[Tensor, " s"]]:
    """`size` distinct triples (a, b, c) drawn uniformly from domain pairs x classes by a
    generator seeded with `seed` (all of them when there are fewer): operands a, b and class c."""
    generator = torch.Generator().manual_seed(seed)
    total = task.n_pairs * task.n_classes
    picked = torch.randperm(total, generator=generator)[: min(size, total)]
    pairs = task.domain[picked // task.n_classes]
    n = task.n_elements
    return pairs // n, pairs % n, picked % task.n_classes


def gradient_module(model: Architecture):
    """The family's hooked module in float64 with its parameters frozen (the gradients are
    taken with respect to activations only), for `operand_gradients`; one serves a whole
    series: each call loads its checkpoint into it."""
    return model.hooked().double().requires_grad_(False)


def operand_gradients(
    model: Architecture,
    state: dict[str, Tensor],
    a: Int[Tensor, " s"],
    b: Int[Tensor, " s"],
    c: Int[Tensor, " s"],
    module=None,
) -> tuple[Float[Tensor, "s d"], Float[Tensor, "s d"]]:
    """dQ_abc / dE_a and dQ_abc / dE_b of every triple (float64), through the family's hooked
    module at the hook points `model.operand_hooks` names (the token embedding at a's and b's
    positions for the transformer, `hook_embed_a` and `hook_embed_b` for the MLP). `module`: a
    `gradient_module(model)` to load the weights into (default: a new one)."""
    module = gradient_module(model) if module is None else module
    module.load_state_dict(
        model.state_dict_of({name: state[name] for name in model.param_shapes()})
    )
    captured: dict[str, Tensor] = {}

    def capture(activation: Tensor, hook) -> Tensor:
        leaf = activation.detach().requires_grad_(True)
        captured[hook.name] = leaf
        return leaf

    names = sorted({name for name, _ in model.operand_hooks})
    tokens = data.tokens(model.cfg, a, b)
    logits = module.run_with_hooks(tokens, fwd_hooks=[(name, capture) for name in names])
    picked = logits[:, -1].gather(1, c[:, None]).sum()
    grads = dict(zip(names, torch.autograd.grad(picked, [captured[n] for n in names]), strict=True))
    grad_a, grad_b = (
        grads[name] if position is None else grads[name][:, position]
        for name, position in model.operand_hooks
    )
    return grad_a, grad_b


def gradient_symmetricity(
    grad_a: Float[Tensor, "s d"], grad_b: Float[Tensor, "s d"]
) -> Float[Tensor, ""]:
    """s_g: the mean cosine similarity of the two gradients over the triples (float64). A triple
    where either gradient is zero (every neuron it reaches dead) has no cosine and is left out;
    NaN when none has one."""
    grad_a, grad_b = grad_a.double(), grad_b.double()
    norms = grad_a.norm(dim=1) * grad_b.norm(dim=1)
    cosine = (grad_a * grad_b).sum(dim=1) / norms
    return cosine[norms > 0].mean()
