"""Seconds to score one posterior sample on 10,000 test images (forward passes only), per scoring variant.

    python benchmarks/bench_scoring.py [--widths 32,48,64,128] [--images 2048] [--compile]

Variants, all in this one process on the same random weights and images (the cost does not depend on values):
``before`` (NCHW input, out-of-place ReLU: the library's earlier scoring path), ``channels_last`` (input in
channels-last memory order), ``channels_last + relu_`` (and ReLU in place under no_grad: the library's scoring
path now, ``evaluation.scoring.predictive_average``), and with ``--compile`` the latter under torch.compile
(compilation time reported separately; not used by the library). Each variant scores ``--images`` 3x32x32 images
in test batches of 256, best of 3, scaled to 10,000; the largest max-abs difference of the logits against
``before`` is reported so that a variant that changes the numbers shows it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, write_results  # noqa: E402


def main() -> None:
    import torch

    from pseudocoresets.models import FlatModel, ModelConfig, build_convnet

    p = argparse.ArgumentParser()
    p.add_argument("--widths", default="32,64,128")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    x = torch.randn(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    rows, profiles = [], []
    for width in [int(w) for w in args.widths.split(",")]:
        model = FlatModel(build_convnet(ModelConfig(width=width), 3, 32, 10))
        theta = model.init(0)

        def score(forward, channels_last: bool, grad_mode: bool):
            outs = []
            with torch.set_grad_enabled(grad_mode), torch.no_grad() if not grad_mode else torch.enable_grad():
                for i in range(0, len(x), args.batch):
                    xb = x[i : i + args.batch]
                    if channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    outs.append(forward(xb).detach())
            return torch.cat(outs)

        def timed(forward, channels_last: bool, grad_mode: bool = False):
            score(forward, channels_last, grad_mode)  # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                out = score(forward, channels_last, grad_mode)
                best = min(best, time.perf_counter() - start)
            return best * 10000 / len(x), out

        plain = lambda xb: model(theta, xb)  # noqa: E731
        # "before": grad mode on makes the library's ReLU run out of place, as the old nn.ReLU did; with nothing
        # requiring grad no graph is recorded, so this is the old no_grad computation
        base, ref = timed(plain, False, grad_mode=True)
        variants = [("before (NCHW, ReLU out of place)", base, ref)]
        t, out = timed(plain, True, grad_mode=True)
        variants.append(("channels_last", t, out))
        t, out = timed(plain, True)
        variants.append(("channels_last + relu_ (library)", t, out))
        if args.compile:
            compiled = torch.compile(plain)
            start = time.perf_counter()
            score(compiled, True, False)
            compile_s = time.perf_counter() - start
            t, out = timed(compiled, True)
            variants.append((f"channels_last + relu_ + torch.compile (compile {compile_s:.0f} s)", t, out))
        from torch.profiler import profile

        with profile() as prof:  # where the "before" forward spends its time
            score(plain, False, True)
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in ops)
        profiles.append({"width": width, "top_ops": [(e.key, e.self_cpu_time_total / total) for e in ops[:5]]})
        for name, seconds, out in variants:
            rows.append(
                {
                    "width": width,
                    "variant": name,
                    "seconds_per_sample_10k": seconds,
                    "speedup": base / seconds,
                    "max_abs_logit_diff": float((out - ref).abs().max()),
                }
            )
            print(rows[-1], flush=True)
    lines = [
        "| ConvNet width | variant | s per sample (10,000 images) | speed-up | max abs logit diff |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['width']} | {r['variant']} | {r['seconds_per_sample_10k']:.2f} | {r['speedup']:.2f}x | "
        f"{r['max_abs_logit_diff']:.1e} |"
        for r in rows
    ]
    lines += ["", "Profile of the \"before\" forward (share of self CPU time, top 5 operators):", ""]
    lines += [f"- width {p['width']}: " + ", ".join(f"{k} {share:.0%}" for k, share in p["top_ops"]) for p in profiles]
    note = (
        f"\nForward passes only, test batches of {args.batch}, {args.images} random 3x32x32 images (best of 3, "
        "scaled to 10,000); every variant in the same process. Command: `python benchmarks/bench_scoring.py"
        f" --widths {args.widths} --images {args.images}{' --compile' if args.compile else ''}`.\n"
    )
    write_results(
        "scoring",
        {"machine": machine(), "rows": rows, "profiles": profiles, "args": vars(args)},
        "\n".join(lines) + "\n" + note,
    )


if __name__ == "__main__":
    main()
