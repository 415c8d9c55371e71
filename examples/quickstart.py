"""Learn a Bayesian pseudocoreset and evaluate it, from Python, on a subset of Fashion-MNIST.

    python examples/quickstart.py                      # Fashion-MNIST from the Debian package, a few minutes
    python examples/quickstart.py --data-root DIR      # any directory with the four Fashion-MNIST IDX files

It uses only the public API (``import pseudocoresets``): a configuration from the ``demo`` preset made smaller,
a :class:`pseudocoresets.Run` over a run directory, expert trajectories, a BPC-fKL coreset and a random one of
the same size, and HMC on each coreset posterior. Re-running it reuses the finished work in the run directory.
"""

from __future__ import annotations

import argparse

import pseudocoresets as bpc


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default="runs/quickstart")
    parser.add_argument("--train-subset", type=int, default=2000, help="training images to use")
    parser.add_argument("--iterations", type=int, default=30, help="coreset learning iterations")
    parser.add_argument("--width", type=int, default=16, help="ConvNet channels")
    args = parser.parse_args(argv)

    config = bpc.make_config(
        "demo",
        overrides={
            "data.root": args.data_root,
            "data.train_subset": args.train_subset,
            "model.width": args.width,
            "experts.num_experts": 2,
            "experts.epochs": 3,
            "distill.iterations": args.iterations,
            "distill.max_start_epoch": 1,
            "hmc.chains": 2,
            "hmc.iterations": 20,
            "hmc.burn_in": 10,
            "hmc.thin": 5,
            "evaluate.repeats": 1,
        },
    )
    run = bpc.Run(config, args.out, quiet=True)
    run.experts()
    accuracy = {}
    for method in ("random", "fkl"):
        coreset = run.distill(method, ipc=2)
        result = run.evaluate(method, ipc=2, protocol="hmc")
        accuracy[method] = result.summary["accuracy"]["mean"]
        print(
            f"{method}: {len(coreset)} images, coreset posterior w = {coreset.posterior.weight:g}, "
            f"HMC accuracy {accuracy[method]:.4f}, NLL {result.summary['nll']['mean']:.4f}"
        )
    return accuracy


if __name__ == "__main__":
    main()
