"""A network evaluated on one flat parameter vector.

Experts, students and samplers all hold parameters as a single 1-D tensor ``theta`` of length P;
:class:`FlatModel` maps it to the module's named parameters with ``torch.func.functional_call``.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, vmap

from . import compiling
from .likelihood import Categorical
from .precision import autocast_dtype


class FlatModel:
    """Functional view of ``module``: ``model(theta, x)`` returns its outputs (logits) for parameters ``theta``;
    ``model.nll(theta, x, y)`` the negative log-likelihood under ``likelihood`` (categorical by default).

    ``precision`` (``fp32`` or ``bf16``, see :mod:`.precision`) is the compute precision of the forward pass; the
    outputs are always fp32. :meth:`with_precision` gives a view of the same network in another precision."""

    def __init__(self, module: nn.Module, likelihood=None, precision: str = "fp32"):
        self.module = module
        self.likelihood = likelihood if likelihood is not None else Categorical()
        self.precision = precision
        self.names = [n for n, _ in module.named_parameters()]
        self.shapes = [p.shape for _, p in module.named_parameters()]
        self.numels = [p.numel() for _, p in module.named_parameters()]
        self.num_params = sum(self.numels)
        for p in module.parameters():
            p.requires_grad_(False)

    def to(self, device: torch.device) -> "FlatModel":
        self.module.to(device)
        return self

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = torch.split(theta, self.numels)
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def flatten(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def with_precision(self, precision: str) -> "FlatModel":
        """The same network (shared module and parameters layout) computing in ``precision``: this model itself
        for its own precision, else one view per precision, made once and kept (objectives ask for an fp32 view at
        every step; a new object each time would mean a new compiled forward each time)."""
        if precision == self.precision:
            return self
        views = self.__dict__.setdefault("_views", {})
        views.setdefault(self.precision, self)
        if precision not in views:
            view = copy.copy(self)  # shares ``_views`` with this model
            view.precision = precision
            view._compiled = None  # a compiled forward belongs to one precision
            view._eager_depth = 0
            views[precision] = view
        return views[precision]

    compile = False  # forward passes under torch.compile (a stage sets it, models/compiling.py); off: eager
    _eager_depth = 0

    @contextlib.contextmanager
    def eager(self) -> Iterator[None]:
        """Forward passes inside run eagerly: graphs that will be differentiated twice (MTT's unroll, DC's
        gradient matching), which torch.compile's AOTAutograd does not support."""
        self._eager_depth += 1
        try:
            yield
        finally:
            self._eager_depth -= 1

    def __call__(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.compile and not self._eager_depth and not compiling.failed():
            try:
                return self.compiled()(theta, x)
            except Exception as exc:  # noqa: BLE001 - a compiler failure: the eager network computes the same
                compiling.record_failure(exc)
        return self._forward(theta, x)

    def _forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return functional_call(self.module, self.unflatten(theta), (x,))
        with torch.autocast(device_type=x.device.type, dtype=dtype):
            out = functional_call(self.module, self.unflatten(theta), (x,))
        return out.float()

    def compiled(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The eager forward under ``torch.compile`` (static shapes: one graph per input shape and grad mode),
        compiled once per FlatModel object and reused for every theta; used by ``__call__`` when ``compile`` is set
        and by test scoring (``--evaluate.compile``)."""
        if getattr(self, "_compiled", None) is None:
            compiling.configure()
            self._compiled = torch.compile(self._forward, dynamic=False)
        return self._compiled

    def nll(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """-log p(y | x, theta), averaged (``mean``), summed (``sum``) or per example (``none``)."""
        return self.likelihood.nll(self(theta, x), y, reduction)

    def batched(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits for a stack of parameter vectors ``thetas`` [K, P] on one input batch: [K, B, classes]."""
        return vmap(lambda t: self._forward(t, x))(thetas)

    def init(self, seed: int) -> torch.Tensor:
        """PyTorch's default initialisation of every layer, drawn reproducibly from ``seed``."""
        first = next(self.module.parameters())
        device = first.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for m in self.module.modules():
                if m is not self.module and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        return torch.cat([p.detach().reshape(-1).clone() for p in self.module.parameters()]).to(first.dtype)

    def param_slices(self) -> list[tuple[str, slice, torch.Size]]:
        """(name, slice into theta, shape) per parameter tensor, for layer-wise objectives."""
        out, start = [], 0
        for n, k, s in zip(self.names, self.numels, self.shapes):
            out.append((n, slice(start, start + k), s))
            start += k
        return out
