"""The network under torch.compile (``--model.compile``): on only where a stage plans enough calls, the same
function as the eager network on every training path (loss, gradients in the parameters and in the inputs) in
both precisions, eager inside double-backward regions, and a failed compilation falls back with one line."""

import pytest
import torch

from pseudocoresets.models import FlatModel, ModelConfig, build_convnet, build_model, compiling
from pseudocoresets.objectives import DistillContext, objective_module
from pseudocoresets.objectives.interface import StudentSettings

CPU = torch.device("cpu")


def _convnet(precision: str = "fp32") -> FlatModel:
    return FlatModel(build_convnet(ModelConfig(width=8, depth=2), 3, 8, 4)).with_precision(precision)


def _loss_and_grads(model, theta, x, y):
    theta = theta.clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)
    loss = model.nll(theta, x, y)
    return (loss.detach(), *torch.autograd.grad(loss, (theta, x)))


def test_compile_decision(monkeypatch):
    monkeypatch.setattr(compiling, "cpp_compiler", lambda: "c++")
    net = _convnet().module
    n = compiling.COMPILE_MIN_CALLS
    assert compiling.should_compile(True, net, CPU, n)
    assert not compiling.should_compile(True, net, CPU, n - 1)  # a short stage stays eager
    assert not compiling.should_compile(False, net, CPU, 10 * n)  # --no-model.compile
    linear = build_model(ModelConfig(arch="linear", likelihood="gaussian"), (3,), 1).module
    assert not compiling.should_compile(True, linear, CPU, 10 * n)
    monkeypatch.setattr(compiling, "cpp_compiler", lambda: None)
    assert not compiling.should_compile(True, net, CPU, 10 * n)
    assert ModelConfig().compile is True


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-5), ("bf16", 2e-2)])
def test_compiled_training_paths_match_the_eager_network(precision, tol, monkeypatch):
    if compiling.cpp_compiler() is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    monkeypatch.setattr(compiling, "_FAILED", [])
    torch.manual_seed(0)
    model = _convnet(precision)
    theta, x, y = model.init(0), torch.randn(6, 3, 8, 8), torch.arange(6) % 4
    eager = _loss_and_grads(model, theta, x, y)
    model.compile = True
    calls = []
    compiled_forward = model.compiled()
    model._compiled = lambda *a: calls.append(1) or compiled_forward(*a)
    compiled = _loss_and_grads(model, theta, x, y)
    assert calls, "the compiled forward was not used"
    for e, c in zip(eager, compiled):  # loss, d/d theta (student, experts, HMC), d/d x (the coreset's gradient)
        assert torch.allclose(c, e, rtol=tol, atol=tol * e.abs().max())
    with torch.no_grad():  # scoring's grad mode (in-place ReLU)
        assert torch.allclose(model(theta, x), eager_logits(model, theta, x), rtol=tol, atol=tol)
    assert not compiling.failed()  # compiled for real, not the eager fallback


def eager_logits(model, theta, x):
    with model.eager():
        return model(theta, x)


def test_double_backward_regions_run_eagerly(monkeypatch):
    """MTT's unroll is differentiated twice: with compile on, its step is the eager one, bit for bit."""
    torch.manual_seed(0)
    model = _convnet()

    used = []

    def refuse(*args):
        used.append(1)
        raise RuntimeError("compiled forward inside an eager() region")

    monkeypatch.setattr(model, "compiled", lambda: refuse)
    monkeypatch.setattr(compiling, "_FAILED", [])

    class Pool:
        def sample_segment(self, max_start, length, g):
            return model.init(0), model.init(1), {}

    def run(compile_on: bool) -> torch.Tensor:
        model.compile = compile_on
        ctx = DistillContext(
            model,
            Pool(),
            torch.randn(20, 3, 8, 8),
            torch.arange(20) % 4,
            4,
            None,
            CPU,
            student=StudentSettings(lr=0.01, steps=3, batch=0, expert_epochs=1, max_start_epoch=0),
        )
        objective = objective_module("wasserstein").build(objective_module("wasserstein").Config(), ctx)
        images = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        objective.step(images, torch.arange(8) % 4, torch.Generator().manual_seed(2))
        return images.grad

    assert torch.equal(run(True), run(False))
    assert not used and not compiling.failed()


def test_a_failed_compilation_goes_on_eagerly_with_one_line(monkeypatch, capsys):
    model = _convnet()
    theta, x, y = model.init(0), torch.randn(6, 3, 8, 8), torch.arange(6) % 4
    eager = _loss_and_grads(model, theta, x, y)

    def broken(*args):
        raise RuntimeError("InductorError: CppCompileError: no compiler\nlong log")

    monkeypatch.setattr(compiling, "_FAILED", [])
    monkeypatch.setattr(model, "compiled", lambda: broken)
    model.compile = True
    for a, b in zip(_loss_and_grads(model, theta, x, y), eager):
        assert torch.equal(a, b)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile failed (RuntimeError: InductorError" in err[0]
    assert "--no-model.compile" in err[0]
    _loss_and_grads(model, theta, x, y)  # no second attempt, no second line
    assert capsys.readouterr().err == ""


def test_one_view_per_precision_and_views_are_not_stuck_in_eager():
    model = _convnet()
    assert model.with_precision("fp32") is model
    view = model.with_precision("bf16")
    assert view is model.with_precision("bf16") and view.with_precision("fp32") is model
    other = _convnet()
    with other.eager():
        inside = other.with_precision("bf16")
    assert inside._eager_depth == 0 and other._eager_depth == 0


def test_eager_scoring_when_asked_even_on_a_compiled_model(monkeypatch):
    from pseudocoresets.evaluation.scoring import predictive_average

    model = _convnet()
    model.compile = True
    used = []
    monkeypatch.setattr(model, "compiled", lambda: used.append(1))
    thetas = torch.stack([model.init(0), model.init(1)])
    predictive_average(model, thetas, torch.randn(5, 3, 8, 8), 4, compile=False)
    assert not used


def test_dc_matches_its_coreset_gradient_eagerly(monkeypatch):
    """DC differentiates the coreset's network gradient again: only the real data's gradients may be compiled."""
    torch.manual_seed(0)
    model = _convnet()
    model.compile = True
    used = []
    monkeypatch.setattr(model, "compiled", lambda: lambda t, x: used.append(len(x)) or model._forward(t, x))
    ctx = DistillContext(model, None, torch.randn(40, 3, 8, 8), torch.arange(40) % 4, 4, None, CPU)
    dc = objective_module("dc")
    objective = dc.build(dc.Config(outer_loop=1, inner_loop=0, real_batch=5), ctx)
    images = torch.randn(8, 3, 8, 8).requires_grad_(True)
    objective.step(images, torch.arange(8) % 4, torch.Generator().manual_seed(2))
    assert images.grad is not None and used == [5, 5, 5, 5]  # one compiled real batch per class, no coreset batch
