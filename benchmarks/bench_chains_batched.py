"""HMC chains stepped one after another against the same chains stepped as one batch (samplers/batched.py).

The quick preset's ConvNet (width 32, depth 3) on a coreset of 100 images (CIFAR-10's 3x32x32 and
Fashion-MNIST's 1x28x28; random pixels: only the time is measured), 5 leapfrog steps per HMC iteration, C = 1, 4,
8 and 16 chains. Each variant is timed over ``--iterations`` iterations after two warm-up iterations, in the same
process, one after the other. Writes ``benchmarks/results/chains_batched_<device>.{json,md}`` with the machine
(CPU flags included). On a GPU the target is 8 chains batched in at most twice one chain's wall time.

    python benchmarks/bench_chains_batched.py [--device cpu|cuda] [--iterations 5] [--chains 1,4,8,16]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import machine, write_results

from pseudocoresets.models import ModelConfig, build_model
from pseudocoresets.samplers import CoresetPosterior, PosteriorSpec, batched, hmc

SHAPES = {"cifar10": (3, 32, 32), "fashion-mnist": (1, 28, 28)}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_iteration(step, iterations: int, device: torch.device) -> float:
    for _ in range(2):
        step()
    synchronise(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronise(device)
    return (time.perf_counter() - t0) / iterations


def measure(shape: tuple, chains: int, iterations: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=32, depth=3), shape, 10).to(device)
    x = torch.randn(100, *shape, device=device)
    y = torch.arange(100, device=device) % 10
    post = CoresetPosterior.from_spec(model, x, y, PosteriorSpec(1.0, 1.0, 1.0))
    g = torch.Generator(device=device).manual_seed(0)
    kernels = [hmc.build(post.potential_and_grad, 5, 1e-4) for _ in range(chains)]
    states = [k.init(model.init(c).to(device)) for c, k in enumerate(kernels)]

    def loop() -> None:
        for c, k in enumerate(kernels):
            states[c], _ = k.step(states[c], g)

    grad_fn = batched.potential_and_grad(post)
    batch_states = list(states)

    def batch() -> None:
        batch_states[:], _ = batched.step(kernels, batch_states, g, grad_fn)

    return {
        "chains": chains,
        "loop_s": seconds_per_iteration(loop, iterations, device),
        "batched_s": seconds_per_iteration(batch, iterations, device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--chains", default="1,4,8,16")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for data, shape in SHAPES.items():
        for chains in [int(c) for c in args.chains.split(",")]:
            row = {"data": data, **measure(shape, chains, args.iterations, device)}
            rows.append(row)
            print(row, flush=True)
    lines = [
        "| coreset (100 images) | chains | loop s / iteration | batched s / iteration | batched speed-up | "
        "batched / one chain's loop |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        one = next(o for o in rows if o["data"] == r["data"] and o["chains"] == 1)["loop_s"]
        lines.append(
            f"| {r['data']} | {r['chains']} | {r['loop_s']:.3f} | {r['batched_s']:.3f} | "
            f"{r['loop_s'] / r['batched_s']:.2f}x | {r['batched_s'] / one:.2f}x |"
        )
    text = (
        f"HMC iterations (5 leapfrog steps) of the quick ConvNet on {args.device}, chains one after another "
        f"against one batch, {args.iterations} timed iterations after 2 warm-up ones "
        f"(`python benchmarks/bench_chains_batched.py --device {args.device}`).\n\n" + "\n".join(lines) + "\n"
    )
    write_results(f"chains_batched_{device.type}", {"machine": machine(), "rows": rows}, text)


if __name__ == "__main__":
    main()
