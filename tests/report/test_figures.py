"""Figure helpers on hand-made inputs."""

import math

import pytest
import torch

from pseudocoresets.report import figures


def test_diagonal_log_amplitude_sees_high_frequency_noise():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.sin(2 * math.pi * (xx + yy) / 32).expand(4, 3, 32, 32).clone()
    noisy = smooth + 0.5 * torch.randn(4, 3, 32, 32, generator=g)
    a, b = figures.diagonal_log_amplitude(smooth), figures.diagonal_log_amplitude(noisy)
    assert a.shape == (16,)
    assert b[8:].mean() > a[8:].mean() + 2  # noise lifts the high frequencies
    assert abs(float(b[1] - a[1])) < 0.5  # the shared low-frequency wave is unchanged


def test_radar_and_cost_plots_write_png_and_svg(tmp_path):
    res = {
        m: {
            "sets": {
                f"{c}/{s}": {"accuracy": {"mean": 0.5 + 0.1 * i}, "nll": {"mean": 1.0 - 0.1 * i}}
                for c in ("fog", "snow", "contrast")
                for s in (1, 5)
            }
        }
        for i, m in enumerate(["fkl", "wasserstein"])
    }
    paths = figures.radar_plot(res, tmp_path / "radar")
    rows = [
        {"model": "quick", "method": m, "ipc": ipc, "memory_mb": ipc * k, "seconds_per_iteration": 0.1 * ipc}
        for m, k in (("fkl", 1), ("wasserstein", 10))
        for ipc in (1, 10, 20)
    ]
    paths += figures.cost_plot(rows, tmp_path / "cost", "quick")
    assert sorted(p.suffix for p in paths) == [".png", ".png", ".svg", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_curves_and_agreement_plots_write_png_and_svg(tmp_path):
    from pseudocoresets.report import figures

    experts = [{"expert": e, "epoch": k, "train_loss": 2.0 / (k + e + 1)} for e in range(2) for k in range(1, 5)]
    distill = {
        "fkl-ipc10": [{"iteration": k, "surrogate": 1.0 / (k + 1)} for k in range(30)],
        "dc-ipc10": [{"iteration": k, "matching_distance": 5.0 - 0.1 * k} for k in range(12)],
    }
    made = figures.curves_plot(experts, distill, tmp_path / "curves")
    rows = [
        {
            "method": m,
            "ipc": 10,
            "protocol": "hmc",
            "agreement": {"mean": a, "std": 0.01},
            "tv": {"mean": 1 - a, "std": None},
        }
        for m, a in (("random", 0.73), ("fkl", 0.78))
    ]
    made += figures.agreement_plot(rows, tmp_path / "agreement", "test")
    assert sorted(p.name for p in made) == ["agreement.png", "agreement.svg", "curves.png", "curves.svg"]
    assert all(p.stat().st_size > 1000 for p in made)


def test_table1_plot_draws_intervals_over_coresets(tmp_path):
    assert figures.half_interval(0.1, 3) == pytest.approx(4.302653 * 0.1 / 3**0.5, rel=1e-6)  # t_{0.975, 2}
    assert figures.half_interval(0.1, 1) == 0.0 and figures.half_interval(None, 3) == 0.0
    rows = [
        {"column": c, "method": m, "ipc": i, "coresets": 3, "accuracy": {"mean": 0.2 + 0.01 * i, "std": 0.01}}
        for c in ("HMC", "A-SGHMC (+Aug)")
        for m in ("random", "fkl")
        for i in (1, 10, 20)
    ]
    rows.append({"column": "HMC", "method": "rkl", "ipc": 10, "coresets": 1, "accuracy": None})  # not measured yet
    made = figures.table1_plot(rows, tmp_path / "table1")
    assert sorted(p.name for p in made) == ["table1.png", "table1.svg"] and all(p.stat().st_size > 0 for p in made)
    with pytest.raises(ValueError, match="no row has accuracy"):
        figures.table1_plot(rows[-1:], tmp_path / "none")
