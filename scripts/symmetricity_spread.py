"""How much the gradient symmetricity of a run depends on its sample of triples.

    python scripts/symmetricity_spread.py RUN [RUN ...] [--samples 20] [--epoch N]

Zhong et al.'s gradient symmetricity is a mean cosine over 100 random triples (a, b, c)
(`grokinterp.analysis.measures.clock_pizza`, whose analysis draws them with seed 0). For each run
this draws `--samples` other samples of 100 (seeds 1, 2, ...) and prints the value of seed 0, the
mean, the standard deviation and the range over the samples, on the run's last checkpoint (or
`--epoch`): a published range narrower than that spread cannot tell two runs apart.
"""

from __future__ import annotations

import argparse

import torch

from grokinterp.analysis.measures import clock_pizza
from grokinterp.storage.run import open_run


def spread(run_dir: str, samples: int, epoch: int | None) -> tuple[float, torch.Tensor]:
    """The symmetricity of sample seed 0 and of seeds 1..samples (float64 [samples])."""
    run = open_run(run_dir)
    state = run.state_dict(epoch=epoch)
    model = run.architecture
    module = clock_pizza.gradient_module(model)

    def of(seed: int) -> float:
        triples = clock_pizza.sample_triples(run.task, seed=seed)
        grads = clock_pizza.operand_gradients(model, state, *triples, module=module)
        return float(clock_pizza.gradient_symmetricity(*grads))

    return of(0), torch.tensor([of(seed) for seed in range(1, samples + 1)], dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--epoch", type=int, default=None, help="default: the last checkpoint")
    args = parser.parse_args()
    print(f"{'run':<40}{'seed 0':>8}{'mean':>8}{'sd':>8}{'min':>8}{'max':>8}")
    for run_dir in args.runs:
        first, values = spread(run_dir, args.samples, args.epoch)
        print(
            f"{run_dir:<40}{first:>8.4f}{values.mean():>8.4f}{values.std():>8.4f}"
            f"{values.min():>8.4f}{values.max():>8.4f}"
        )


if __name__ == "__main__":
    main()
