"""The public Python API checks its arguments at the call: a wrong type or value is one UserError naming the
argument (api.py's one helper), never a traceback from inside a stage, nor a silent conversion (None -> 'None')."""

import pytest
import torch

import pseudocoresets
from pseudocoresets import UserError

from helpers import bpc


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"overrides": "a=b"}, r"overrides must be a mapping"),
        ({"overrides": ["distill.iterations", "5"]}, r"overrides must be a mapping"),
        ({"overrides": {1: 2}}, r"overrides key 1 must be a string"),
        ({"overrides": {"data.root": None}}, r"overrides\['data.root'\] must be .* \(got NoneType None\)"),
        ({"overrides": {"data.root": {"a": 1}}}, r"overrides\['data.root'\] must be"),
        ({"overrides": {"data.root": b"data/fm"}}, r"overrides\['data.root'\] must be"),
        ({"overrides": {"ipcs": (1, 10)}}, r"overrides\['ipcs'\] must be .* \(got tuple"),
        ({"file": 42}, r"file must be a path .* \(got int 42\)"),
        ({"file": "conf\nig.yaml"}, r"file must be a path .* no newline"),
        ({"preset_name": None}, r"preset_name must be one of 'quick'"),
    ],
    ids=[
        "str",
        "list",
        "int key",
        "None",
        "dict value",
        "bytes value",
        "tuple value",
        "int file",
        "newline file",
        "None preset",
    ],
)
def test_make_config_refuses_a_wrong_argument_by_name(kwargs, match):
    with pytest.raises(UserError, match=match):
        pseudocoresets.make_config(**kwargs)


def test_make_config_takes_what_a_file_or_the_command_line_gives(tmp_path):
    config = pseudocoresets.make_config(
        "quick", overrides={"ipcs": [1, 10], "data.root": tmp_path, "distill.iterations": 5, "hmc.chains": "2"}
    )
    assert config.ipcs == [1, 10] and config.data.root == str(tmp_path) and config.distill.iterations == 5


@pytest.mark.parametrize(
    "config, out, options, match",
    [
        (42, "r", {}, r"config must be a RunConfig .* \(got int 42\)"),
        ({"distill": {"ipc": 2}}, "r", {}, r"config must be a RunConfig .* \(got dict"),
        ("blr", 42, {}, r"run directory \(out, --out\) must be a path .* \(got int 42\)"),
        ("blr", None, {}, r"run directory \(out, --out\) must be a path"),
        ("blr", "runs/a\nb", {}, r"run directory \(out, --out\) must be a path .* no newline"),
        ("blr", "r", {"device": torch.device("meta")}, r"device 'meta' is not supported"),
        ("blr", "r", {"device": None}, r"device must be a device name .* \(got NoneType None\)"),
        ("blr", "r", {"device": ["cpu"]}, r"device must be a device name"),
        ("blr", "r", {"quiet": "yes"}, r"quiet must be True or False"),
    ],
    ids=[
        "int config",
        "dict config",
        "int out",
        "None out",
        "newline out",
        "meta",
        "None device",
        "list device",
        "quiet",
    ],
)
def test_a_run_refuses_a_wrong_argument_by_name(tmp_path, config, out, options, match):
    where = tmp_path / out if isinstance(out, str) else out
    with pytest.raises(UserError, match=match):
        pseudocoresets.Run(config, where, **options)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def blr_run(tmp_path):
    return pseudocoresets.Run(pseudocoresets.make_config("blr"), tmp_path / "r", device="cpu", quiet=True)


@pytest.mark.parametrize(
    "method, ipc, match",
    [
        ("random", 2.5, r"ipc must be a whole number .* \(got float 2.5\)"),
        ("random", -1, r"ipc must be a whole number .* \(got int -1\)"),
        ("random", True, r"ipc must be a whole number .* \(got bool True\)"),
        ("random", "2", r"ipc must be a whole number .* \(got str '2'\)"),
        (3, 10, r"method must be a method's name .* \(got int 3\)"),
        (None, 10, r"method must be a method's name"),
    ],
)
def test_distill_refuses_a_wrong_method_or_ipc_before_any_work(blr_run, method, ipc, match):
    with pytest.raises(UserError, match=match):
        blr_run.distill(method, ipc)
    assert not (blr_run.out / "coresets").exists()


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("random", 10), {"protocol": 5}, r"protocol must be one of 'hmc', 'asghmc', 'vbpc' \(got int 5\)"),
        (("random", 10), {"protocol": "HMC"}, r"protocol must be one of"),
        (("random", 0.5), {}, r"ipc must be a whole number"),
    ],
)
def test_evaluate_refuses_a_wrong_protocol_or_ipc_before_any_work(blr_run, args, kwargs, match):
    with pytest.raises(UserError, match=match):
        blr_run.evaluate(*args, **kwargs)
    assert not (blr_run.out / "evals").exists()


def test_the_command_line_refuses_an_out_with_a_newline(tmp_path):
    out = tmp_path / "runs\nquick"
    proc = bpc("experts", "--out", str(out), "--data.root", str(tmp_path / "none"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no newline" in proc.stderr
    assert list(tmp_path.iterdir()) == []
