"""Turning stored uint8 images into network inputs, and back into pictures.

    prepare(x) = ZCA( (x / 255 - mean_c) / std_c )        (ZCA optional)

The per-channel mean/std and the ZCA are fitted on the train split only and applied alike to every split
(test, corrupted test sets, coreset pictures). :meth:`Preprocessor.state` is what a coreset artifact stores
so that its pictures can be un-whitened and un-normalised later (:meth:`Preprocessor.from_state`).
"""

from __future__ import annotations

import torch

from ..errors import UserError

from .zca import ZCA


class Normalizer:
    """Per-channel standardisation with mean/std computed on the train split, applied alike to every split."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean = mean.reshape(1, -1, 1, 1).float()
        self.std = std.reshape(1, -1, 1, 1).float()

    @classmethod
    def fit(cls, train_x_uint8: torch.Tensor) -> "Normalizer":
        x = train_x_uint8.float() / 255.0
        return cls(x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x_uint8.device), self.std.to(x_uint8.device)
        return (x_uint8.float() / 255.0 - mean) / std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] pixel intensities (for pictures)."""
        return x * self.std.to(x.device) + self.mean.to(x.device)

    def state(self) -> dict[str, torch.Tensor]:
        return {"norm_mean": self.mean.flatten(), "norm_std": self.std.flatten()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "Normalizer":
        return cls(state["norm_mean"], state["norm_std"])


class Preprocessor:
    """Train-split normalisation followed by the optional train-split ZCA (see the module docstring)."""

    def __init__(self, normalizer: Normalizer, zca: ZCA | None = None):
        self.normalizer = normalizer
        self.zca = zca

    @classmethod
    def fit(
        cls, train_x_uint8: torch.Tensor, zca: bool = False, zca_reg: float = 0.1, device: torch.device | str = "cpu"
    ) -> "Preprocessor":
        norm = Normalizer.fit(train_x_uint8)
        whitening = ZCA.fit(norm(train_x_uint8), zca_reg).to(device) if zca else None
        return cls(norm, whitening)

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(x_uint8)
        return self.zca.transform(x) if self.zca is not None else x

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs -> [0, 1] pixel intensities (ZCA inverted, normalisation undone), in float64."""
        x = x.double()
        if self.zca is not None:
            x = self.zca.inverse(x)
        mean = self.normalizer.mean.double().to(x.device)
        std = self.normalizer.std.double().to(x.device)
        return (x * std + mean).clamp(0, 1)

    def state(self) -> dict[str, torch.Tensor]:
        state = self.normalizer.state()
        if self.zca is not None:
            state.update({f"zca_{k}": v for k, v in self.zca.state().items()})
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "Preprocessor":
        zca = None
        if "zca_eigenvectors" in state:
            zca = ZCA.from_state({k[4:]: v for k, v in state.items() if k.startswith("zca_")})
        return cls(Normalizer.from_state(state), zca)


class FeatureScaler:
    """Tabular features: x -> (x - mean) / std per column (train split), then an optional constant-1 column.

    ``mean`` = 0 and ``std`` = 1 leave the features as they are (``--data.standardize false``).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, intercept: bool = False):
        self.mean = mean.reshape(1, -1).float()
        self.std = std.reshape(1, -1).float()
        self.intercept = bool(intercept)

    @classmethod
    def fit(cls, train_x: torch.Tensor, standardize: bool = True, intercept: bool = False) -> "FeatureScaler":
        d = train_x.shape[1]
        if not standardize:
            return cls(torch.zeros(d), torch.ones(d), intercept)
        std = train_x.double().std(0) if len(train_x) > 1 else torch.ones(d, dtype=torch.float64)
        return cls(train_x.double().mean(0), std.clamp_min(1e-6), intercept)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.float() - self.mean.to(x.device)) / self.std.to(x.device)
        return torch.cat([z, torch.ones(len(z), 1, device=z.device)], 1) if self.intercept else z

    def state(self) -> dict[str, torch.Tensor]:
        return {
            "feature_mean": self.mean.flatten(),
            "feature_std": self.std.flatten(),
            "feature_intercept": torch.tensor([int(self.intercept)]),
        }


def fit_preprocessor(data, config, device: torch.device | str = "cpu") -> Preprocessor | FeatureScaler:
    """The preprocessing of ``data`` (ImageData or TabularData) fitted on its train split, as ``config`` (a
    DataConfig) asks: normalisation and ZCA for images, standardisation and an intercept column for tables. An
    empty train split is refused in one line (its statistics do not exist)."""
    if len(data.train_x) == 0:
        raise UserError(f"the training split of {data.name} holds no examples; check --data.root and its files")
    if data.is_image:
        return Preprocessor.fit(data.train_x, config.zca, config.zca_reg, device)
    return FeatureScaler.fit(data.train_x, config.standardize, config.intercept)
