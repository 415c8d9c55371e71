"""Compiled scoring is on by default where it pays, and never changes a result: short evaluations, the linear
model and CPUs without a C++ compiler score eagerly, and a compilation that fails falls back to the eager network
with one line on stderr."""

import torch

from pseudocoresets.evaluation import EvalConfig
from pseudocoresets.evaluation.scoring import COMPILE_MIN_FORWARDS, compile_pays, predictive_average
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet, build_model, compiling

CPU = torch.device("cpu")


def _convnet() -> FlatModel:
    return FlatModel(build_convnet(ModelConfig(width=8, depth=2), 3, 8, 4))


def test_compile_is_the_default_and_pays_only_for_long_scoring(monkeypatch):
    assert EvalConfig().compile is True
    monkeypatch.setattr(compiling, "cpp_compiler", lambda: "c++")
    net = _convnet()
    batches = COMPILE_MIN_FORWARDS // 4
    assert compile_pays(True, net, 4, batches * 256, 256, CPU)  # 4 samples x 32 batches
    assert not compile_pays(True, net, 4, batches * 256 - 256, 256, CPU)  # one batch short
    assert not compile_pays(False, net, 1000, 10_000, 256, CPU)  # switched off
    linear = build_model(ModelConfig(arch="linear", likelihood="gaussian"), (3,), 1)
    assert not compile_pays(True, linear, 1000, 10_000, 256, CPU)
    monkeypatch.setattr(compiling, "cpp_compiler", lambda: None)
    assert not compile_pays(True, net, 1000, 10_000, 256, CPU)  # no C++ compiler for inductor on a CPU


def test_no_cpp_compiler_on_the_path_is_seen(monkeypatch, tmp_path):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compiling.cpp_compiler() is None


def test_a_failed_compilation_scores_eagerly_with_one_line(monkeypatch, capsys):
    net = _convnet()
    thetas = torch.stack([net.init(0), net.init(1)])
    x = torch.randn(37, 3, 8, 8)
    eager = predictive_average(net, thetas, x, 16)

    def broken(theta, inputs):
        raise RuntimeError("InductorError: no working C++ compiler\nmore detail")

    monkeypatch.setattr(net, "compiled", lambda: broken)
    monkeypatch.setattr(compiling, "_FAILED", [])
    fallback = predictive_average(net, thetas, x, 16, compile=True)
    assert torch.equal(fallback, eager)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile failed" in err[0] and "--no-model.compile" in err[0]
    assert compiling.failed()  # later cells of the process do not try again
    assert torch.equal(predictive_average(net, thetas, x, 16, compile=True), eager)
    assert capsys.readouterr().err == ""
