"""devinterp's grokking example trained by its own rules, outside grokinterp: a second
implementation that tells the example's setting from its seed.

    python scripts/devinterp_notebook.py [--seeds 0,1,2,3] [--every 1250]

The training of timaeus-research/devinterp @ a646b9d, examples/grokking.ipynb, cells 4-5, written
out in plain torch: (a + b) mod 53 over the pairs in a Python set's iteration order,
`random.seed(seed)` and `random.shuffle` of their indices, the first 40% for training;
`torch.manual_seed(seed)`, then an `nn.Embedding(53, 12)`, `linear1r` and `linear1l`
(`nn.Linear(12, 48)`, in that order), `linear2` (`nn.Linear(48, 53, bias=False)`), GELU;
`torch.optim.Adam(lr=5e-3, weight_decay=2e-4)`; 25,000 steps, each on `next(iter(DataLoader(
train, batch_size=128, shuffle=True)))`. Prints the test loss and accuracy every `--every` steps
and, per seed, the first printed step with test accuracy >= 0.99 (grokinterp's
`grokinterp reproduce devinterp-grokking` reports the first epoch >= 0.999 of every epoch).
"""

from __future__ import annotations

import argparse
import random

import torch
from torch import nn
from torch.utils.data import DataLoader

P, STEPS, LR, BATCH, HIDDEN, EMBED, TRAIN_FRAC, WEIGHT_DECAY = (
    53,
    25_000,
    5e-3,
    128,
    48,
    12,
    0.4,
    2e-4,
)


class NotebookMLP(nn.Module):
    """The notebook's `MLP`, its submodules created in its order (the init draws follow it)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(P, EMBED)
        self.linear1r = nn.Linear(EMBED, HIDDEN, bias=True)
        self.linear1l = nn.Linear(EMBED, HIDDEN, bias=True)
        self.linear2 = nn.Linear(HIDDEN, P, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.linear1l(self.embedding(x[..., 0]))
        b = self.linear1r(self.embedding(x[..., 1]))
        return self.linear2(nn.functional.gelu(a + b))


def train(seed: int, every: int) -> int | None:
    """Train one seed, print its test curve, return the first printed step at >= 99%."""
    torch.manual_seed(seed)
    pairs = {(a, b) for a in range(P) for b in range(P)}
    dataset = [(torch.tensor([a, b]), torch.tensor((a + b) % P)) for a, b in pairs]
    order = list(range(len(dataset)))
    random.seed(seed)
    random.shuffle(order)
    n_train = int(TRAIN_FRAC * len(dataset))
    train_set = [dataset[i] for i in order[:n_train]]
    test_x = torch.stack([dataset[i][0] for i in order[n_train:]])
    test_y = torch.stack([dataset[i][1] for i in order[n_train:]])
    model = NotebookMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loader = DataLoader(train_set, batch_size=BATCH, shuffle=True)
    grokked = None
    for step in range(1, STEPS + 1):
        x, y = next(iter(loader))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if step % every == 0:
            with torch.no_grad():
                logits = model(test_x)
                loss = nn.functional.cross_entropy(logits, test_y).item()
                accuracy = (logits.argmax(-1) == test_y).double().mean().item()
            print(
                f"seed {seed} step {step:>6}: test loss {loss:8.3f}  test accuracy {accuracy:.3f}"
            )
            if grokked is None and accuracy >= 0.99:
                grokked = step
    return grokked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated seeds")
    parser.add_argument("--every", type=int, default=1250, help="steps between test evaluations")
    args = parser.parse_args()
    found = {int(s): train(int(s), args.every) for s in args.seeds.split(",")}
    for seed, step in found.items():
        print(
            f"seed {seed}: test accuracy >= 0.99 first at step {step or 'none (not within 25,000)'}"
        )


if __name__ == "__main__":
    main()
