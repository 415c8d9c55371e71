"""CONTRIBUTING.md's recipes, done inside a test: a new divergence is one module registered in
``objectives.OBJECTIVES``; a new evaluation protocol is one module registered in
``evaluation.protocols.PROTOCOLS`` (here a new sampler, through the shared chain driver). Nothing else in the
package changes: the config, the command line, the pipeline, the resource check and the report pick them up.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import pytest
import torch

from pseudocoresets import cli, config
from pseudocoresets.evaluation import PROTOCOLS, EvalSettings, evaluate_coreset
from pseudocoresets.evaluation.protocols.sampled import kept_per_chain, sample_predictive, validate_chains
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet
from pseudocoresets.objectives import OBJECTIVES, ObjectiveBase
from pseudocoresets.pipeline import Workspace, run_distill, run_evaluate
from pseudocoresets.pipeline.resources import check_cells
from pseudocoresets.report import collect_results
from pseudocoresets.samplers import run_chain
from helpers import make_fashion_dir


# ------------------------------------------------------------------ a toy divergence, as one module
@dataclass
class ToyConfig:
    """Pull every coreset image towards a constant picture."""

    target: float = field(default=0.5, metadata={"help": "the constant the images are pulled to"})

    def validate(self) -> None:
        pass


class PullToConstant(ObjectiveBase):
    """D(u) = ||u - c||^2 / 2, gradient u - c: the simplest 'divergence' with a known minimiser."""

    name = "toy"

    def step(self, images, labels, g):
        images.grad = images.detach() - self.c.target
        return {"distance": float(((images.detach() - self.c.target) ** 2).sum())}

    def summary(self):
        return {"toy_target": self.c.target}


def toy_module() -> types.ModuleType:
    module = types.ModuleType("toy")
    module.NAME, module.NEEDS_EXPERTS, module.Config = "toy", False, ToyConfig
    module.preset_values = lambda preset, ipc: {"distill.lr_images": 0.5} if preset == "quick" else {}
    module.build = lambda cfg, ctx: PullToConstant(cfg, ctx)
    return module


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "toy", toy_module())


@pytest.fixture
def workspace(tmp_path):
    root = make_fashion_dir(tmp_path / "fm", n_train=60, n_test=20)
    cfg = config.apply_overrides(
        config.preset("quick"),
        {
            "data.root": str(root),
            "model.width": 4,
            "distill.iterations": 30,
            "evaluate.chains": 1,
            "evaluate.iterations": 3,
            "evaluate.burn_in": 1,
            "evaluate.thin": 1,
            "evaluate.repeats": 1,
            "hmc.settle_rhat": 0,  # a fixed budget of 3 iterations
        },
    )
    return Workspace(cfg, tmp_path / "run", torch.device("cpu"), quiet=True)


def test_a_new_divergence_is_one_registered_module(toy_registered, workspace):
    assert "toy" in config.sections()
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "--toy.target" in help_text and "the constant the images are pulled to" in help_text
    config.apply_overrides(workspace.config, {"toy.target": 0.25, "methods": ["random", "toy"], "ipcs": [1]})
    distill_cfg, own = workspace.config.cell("toy", 1)
    assert own.target == 0.25 and distill_cfg.lr_images == 0.5  # the module's preset value reached the cell
    path = run_distill(workspace, "toy", 1)  # no experts: NEEDS_EXPERTS is False
    assert not (workspace.out / "experts").exists()
    from safetensors.torch import load_file

    images = load_file(str(path / "coreset.safetensors"))["images"]
    # SGD with momentum 0.5 and lr 0.5 on ||u - c||^2 / 2 contracts u - c by a factor < 0.6 per step
    assert torch.allclose(images, torch.full_like(images, 0.25), atol=1e-4)
    run_evaluate(workspace, "toy", 1, "hmc")
    rows = collect_results(workspace.out)
    assert [r["method"] for r in rows] == ["toy"] and math.isfinite(rows[0]["accuracy"]["mean"])


def test_the_toy_module_is_unknown_without_its_registry_entry(workspace):
    from pseudocoresets.errors import UserError

    with pytest.raises(UserError, match="unknown method 'toy'"):
        workspace.config.cell("toy", 1)


# ------------------------------------------------------------------ a toy sampler, as one module and one row
@dataclass
class RWMState:
    position: torch.Tensor
    potential: torch.Tensor


@dataclass
class RWMInfo:
    accept_prob: float


@dataclass(frozen=True)
class RandomWalkMetropolis:
    """Gaussian random-walk Metropolis on exp(-U): propose q + step * N(0, I), accept with min(1, exp(-dU))."""

    potential_and_grad: object
    step_size: float

    def init(self, position):
        return RWMState(position, self.potential_and_grad(position)[0])

    def step(self, state, g):
        proposal = state.position + self.step_size * torch.randn(
            state.position.shape, generator=g, dtype=state.position.dtype, device=state.position.device
        )
        potential = self.potential_and_grad(proposal)[0]
        prob = math.exp(min(0.0, -float(potential - state.potential)))
        accepted = float(torch.rand((), generator=g, device=g.device)) < prob
        return (RWMState(proposal, potential) if accepted else state), RWMInfo(prob)


def test_the_toy_kernel_samples_a_known_gaussian_through_the_shared_driver():
    mean, std = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)

    def potential_and_grad(q):
        z = (q - mean) / std
        return 0.5 * (z * z).sum(), z / std

    g = torch.Generator().manual_seed(0)
    chain = run_chain(
        RandomWalkMetropolis(potential_and_grad, 1.0),
        torch.zeros(2, dtype=torch.float64),
        g,
        iterations=20000,
        burn_in=1000,
        thin=5,
    )
    s = torch.stack(chain.samples)
    assert ((s.mean(0) - mean).abs() < 0.15 * std * 2).all() and ((s.std(0) / std - 1).abs() < 0.15).all()
    assert 0.2 < sum(chain.accept_probs) / len(chain.accept_probs) < 0.9


@dataclass
class RWMConfig:
    """Random-walk Metropolis on the coreset posterior."""

    chains: int = field(default=2, metadata={"help": "chains per repeat"})
    iterations: int = field(default=6, metadata={"help": "iterations per chain"})
    burn_in: int = field(default=2, metadata={"help": "iterations discarded"})
    thin: int = field(default=2, metadata={"help": "keep every thin-th state"})
    init_std: float = field(default=0.1, metadata={"help": "chains start at N(0, init_std^2 I)"})
    step_size: float = field(default=0.01, metadata={"help": "the random walk's step"})

    def validate(self) -> None:
        validate_chains(self, "rwm")


def rwm_module() -> types.ModuleType:
    module = types.ModuleType("rwm")
    module.NAME, module.SECTION, module.Config = "rwm", "rwm", RWMConfig
    module.preset_values = lambda preset, ipc: {"rwm.step_size": 0.02} if preset == "quick" else {}
    module.check_data = lambda config, is_image, is_regression: None
    module.planned_calls = lambda config: config.chains * config.iterations
    module.kept_states = lambda config: config.chains * kept_per_chain(config)

    def kernel(posterior, config):
        return RandomWalkMetropolis(posterior.potential_and_grad, config.step_size), None, 0, None

    module.predict = lambda ctx, config, seed: sample_predictive(ctx, config, seed, "rwm", kernel)
    return module


def test_a_new_protocol_is_one_registered_module(monkeypatch, workspace):
    monkeypatch.setitem(PROTOCOLS, "rwm", rwm_module())
    assert "rwm" in config.sections()
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "--rwm.step_size" in help_text and "the random walk's step" in help_text
    torch.manual_seed(0)
    model = FlatModel(build_convnet(ModelConfig(width=2, depth=1), 1, 8, 3))
    x, y = torch.randn(6, 1, 8, 8), torch.arange(6) % 3
    settings = EvalSettings.build("rwm", repeats=1, step_size=0.01)
    result = evaluate_coreset(model, x, y, {"test": x}, y, settings, quiet=True)
    assert result["protocol"] == "rwm" and result["repeats"][0]["samples"] == 4
    assert 0 < result["summary"]["acceptance_rate"]["mean"] <= 1
    # through the pipeline: the preset's value of the module reaches the cell, and the report lists the protocol
    config.apply_overrides(workspace.config, {"methods": ["random"], "ipcs": [1], "protocols": ["rwm"]})
    cell = workspace.config.resolve("random", 1, "rwm")
    assert cell.evaluation.own.step_size == 0.02 and cell.evaluation.planned_calls() == 12
    check_cells(workspace)
    run_distill(workspace, "random", 1)
    path = run_evaluate(workspace, "random", 1, "rwm")
    assert path.name == "random-ipc1-rwm"
    rows = collect_results(workspace.out)
    assert [r["protocol"] for r in rows] == ["rwm"] and math.isfinite(rows[0]["accuracy"]["mean"])
    with pytest.raises(Exception, match="unknown protocol"):
        EvalSettings.build("nope")


def test_the_toy_protocol_is_unknown_without_its_registry_entry(workspace):
    from pseudocoresets.errors import UserError

    with pytest.raises(UserError, match="unknown protocol 'rwm'"):
        workspace.config.resolve("random", 1, "rwm")
