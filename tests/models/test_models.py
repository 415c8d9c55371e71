"""ConvNet architecture and the flat-parameter functional form."""

import shutil

import pytest
import torch

from pseudocoresets.errors import UserError
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet


def test_paper_convnet_has_320010_parameters():
    net = build_convnet(ModelConfig(), channels=3, image_size=32, num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == 320_010


def test_flat_model_matches_module_and_roundtrips():
    net = build_convnet(ModelConfig(width=8, depth=2), 1, 28, 10)
    model = FlatModel(net)
    theta = model.init(3)
    x = torch.randn(5, 1, 28, 28)
    assert torch.allclose(model(theta, x), net(x), atol=1e-6)  # init wrote theta into the module too
    assert torch.equal(model.flatten(model.unflatten(theta)), theta)
    assert torch.equal(model.init(3), theta) and not torch.equal(model.init(4), theta)
    thetas = torch.stack([theta, model.init(5)])
    batched = model.batched(thetas, x)
    assert torch.allclose(batched[1], model(thetas[1], x), atol=1e-5)


def test_gradients_flow_to_theta_and_inputs():
    model = FlatModel(build_convnet(ModelConfig(width=4, depth=1), 3, 8, 2))
    theta = model.init(0).requires_grad_(True)
    x = torch.randn(3, 3, 8, 8, requires_grad=True)
    model(theta, x).sum().backward()
    assert theta.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kw", [{"norm": "batchnorm"}, {"pooling": "max2"}, {"width": 0}, {"depth": 6}])
def test_bad_architecture_is_a_user_error(kw):
    with pytest.raises(UserError):
        build_convnet(ModelConfig(**kw), 1, 28, 10)


def test_scoring_paths_agree_with_the_plain_forward():
    """Channels-last input, the in-place ReLU under no_grad and (``--evaluate.compile``) torch.compile with a padded
    last batch give the plain forward's predictive: same values, every test point once."""
    from pseudocoresets.evaluation.scoring import predictive_average

    torch.manual_seed(0)
    model = FlatModel(build_convnet(ModelConfig(width=8, depth=2), 3, 8, 4))
    thetas = torch.stack([model.init(0), model.init(1)])
    x = torch.randn(37, 3, 8, 8)  # 37 = 2 batches of 16 + 5: the compiled path pads the last one
    with torch.enable_grad():  # out-of-place ReLU, NCHW: the plain forward
        plain = torch.stack([torch.softmax(model(t, x), -1) for t in thetas]).mean(0).detach()
    eager = predictive_average(model, thetas, x, 16)
    assert eager.shape == (37, 4) and torch.allclose(eager, plain, atol=1e-6)
    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    compiled = predictive_average(model, thetas, x, 16, compile=True)
    assert compiled.shape == (37, 4) and torch.allclose(compiled, plain, atol=1e-5)
