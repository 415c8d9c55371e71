"""Every bad input is one line on stderr, exit 2, no traceback, nothing lost or half-written.

Each case builds a command line (and whatever garbled file it needs) and runs ``bpc`` in this process, so the
table stays cheap; the subprocess path (the installed ``bpc`` script) is covered by tests/pipeline/test_pipeline.py.
"""

import shutil
from pathlib import Path

import pytest

from pseudocoresets.cli import main
from helpers import TINY


def opts(*extra):
    return lambda ctx: ["run", "--out", str(ctx.out), "--data.root", str(ctx.data), *TINY, *extra]


def with_file(name: str, content, *extra, stage="run", data=True):
    """A command reading a file ``name`` (in the case's directory) holding ``content``."""

    def build(ctx):
        path = ctx.tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        args = [a.replace("{file}", str(path)) for a in extra]
        return [stage, "--out", str(ctx.out), *(["--data.root", str(ctx.data)] if data else []), *TINY, *args]

    return build


def tabular(content: str, *extra):
    def build(ctx):
        path = ctx.tmp / "table.csv"
        path.write_text(content)
        return [
            "experts",
            "--out",
            str(ctx.out),
            "--preset",
            "blr",
            "--data.name",
            "tabular",
            "--data.root",
            str(path),
            "--model.arch",
            "linear",
            "--model.likelihood",
            "gaussian",
            "--quiet",
            *extra,
        ]

    return build


def broken_artifact(relpath: str, content, stage: str, *extra):
    """The finished tiny run, copied, with one artifact replaced by ``content`` (None: deleted)."""

    def build(ctx):
        shutil.copytree(ctx.run, ctx.out)
        path = ctx.out / relpath
        if callable(content):
            content(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        if stage == "evaluate":
            shutil.rmtree(ctx.out / "evals", ignore_errors=True)
        if stage in ("distill", "evaluate") and "coresets" not in relpath and "experts" in relpath:
            shutil.rmtree(ctx.out / "coresets", ignore_errors=True)
            shutil.rmtree(ctx.out / "evals", ignore_errors=True)
        return [
            stage,
            *(
                ["--out", str(ctx.out)]
                if stage == "report"
                else ["--out", str(ctx.out), "--data.root", str(ctx.data), *TINY]
            ),
            *extra,
        ]

    return build


def coreset_tensors(**tensors):
    def write(path):
        from safetensors.torch import load_file, save_file

        t = load_file(str(path))
        for k, v in tensors.items():
            t[k] = (v(t[k]) if callable(v) else v).contiguous()
        save_file(t, str(path))

    return write


def expert_tensor(fn):
    def write(path):
        from safetensors.torch import load_file, save_file

        t = load_file(str(path))
        t["trajectory"] = fn(t["trajectory"]).contiguous()
        save_file(t, str(path), metadata={"seed": "0"})

    return write


CASES = {
    # numbers: ranges, types, finiteness (no silent truncation)
    "ipc negative": opts("--ipcs", "-1"),
    "ipc zero": opts("--ipcs", "0"),
    "ipc not a number": opts("--ipcs", "a"),
    "distill.ipc contradicts --ipcs": opts("--distill.ipc", "5"),
    "distill.ipc negative": opts("--distill.ipc", "-1"),
    "distill.method contradicts --methods": opts("--methods", "fkl", "--distill.method", "rkl"),
    "evaluate.protocol contradicts --protocols": opts("--protocols", "hmc", "--evaluate.protocol", "asghmc"),
    "unknown method": opts("--methods", "nope"),
    "unknown protocol": opts("--protocols", "nope"),
    "empty methods": opts("--methods", ","),
    "expert_epochs negative": opts("--distill.expert_epochs", "-1"),
    "max_start_epoch negative": opts("--distill.max_start_epoch", "-1"),
    "max_start_epoch past the experts": opts("--distill.max_start_epoch", "9"),
    "student_steps negative": opts("--distill.student_steps", "-2"),
    "second ipc invalid for a cell": opts("--ipcs", "2,3", "--methods", "dc", "--dc.outer_loop", "0"),
    "iterations negative": opts("--distill.iterations", "-1"),
    "checkpoint_every negative": opts("--distill.checkpoint_every", "-3"),
    "lr_images nan": opts("--distill.lr_images", "nan"),
    "lr_images zero": opts("--distill.lr_images", "0"),
    "lr_student inf": opts("--distill.lr_student", "inf"),
    "unknown optimizer": opts("--distill.optimizer", "rmsprop"),
    "snapshot_every negative": opts("--distill.snapshot_every", "-1"),
    "imported without a source": opts("--methods", "imported"),
    "import source missing": opts("--methods", "imported", "--distill.import_from", "/nonexistent/set.npz"),
    "import garbage npz": with_file(
        "set.npz", b"not a zip", "--methods", "imported", "--distill.import_from", "{file}"
    ),
    "import unknown format": with_file("set.txt", "1,2,3", "--methods", "imported", "--distill.import_from", "{file}"),
    "experts lr nan": opts("--experts.lr", "nan"),
    "experts lr negative": opts("--experts.lr", "-0.1"),
    "experts zero": opts("--experts.num_experts", "0"),
    "experts batch zero": opts("--experts.batch_size", "0"),
    "ece_bins zero": opts("--evaluate.ece_bins", "0"),
    "test_batch zero": opts("--evaluate.test_batch", "0"),
    "step_size inf": opts("--evaluate.step_size", "inf"),
    "step_size negative": opts("--evaluate.step_size", "-1"),
    "chains zero": opts("--evaluate.chains", "0"),
    "repeats zero": opts("--evaluate.repeats", "0"),
    "burn_in past iterations": opts("--evaluate.burn_in", "10", "--evaluate.iterations", "5"),
    "target_accept one": opts("--evaluate.target_accept", "1"),
    "friction zero": opts("--evaluate.friction", "0"),
    "unknown corruption": opts("--evaluate.corruptions", "fog,nope"),
    "severity 9": opts("--evaluate.corruptions", "fog", "--evaluate.severities", "9"),
    # a range for every number: no negatives, seeds within the generators' range, counts and scales bounded
    "seed beyond the generator": opts("--evaluate.seed", "99999999999999999999999"),
    "seed 1e23 in a YAML file": with_file("seed.yaml", "experts:\n  seed: 1.0e+23\n", "--config", "{file}"),
    "data seed negative": opts("--data.seed", "-1"),
    "momentum above one": opts("--experts.momentum", "1.5"),
    "pixel momentum of one": opts("--distill.momentum_images", "1"),
    "weight decay negative": opts("--experts.weight_decay", "-0.1"),
    "experts beyond any run": opts("--experts.num_experts", "1000000000"),
    "chains beyond any run": opts("--evaluate.chains", "100000000000"),
    "ece bins 10**23": opts("--evaluate.ece_bins", "100000000000000000000000"),
    "fkl samples beyond any run": opts("--fkl.num_samples", "1000000000"),
    "ipcs beyond any run": opts("--ipcs", "6000000000"),
    "learning rate 1e300": opts("--distill.lr_images", "1e300"),
    "prior std 1e300": opts("--posterior.prior_std", "1e300"),
    "threads negative": opts("--threads", "-5"),
    "threads 100000": opts("--threads", "100000"),
    "corruption subset negative": opts("--evaluate.corruption_subset", "-3"),
    # configuration files: keys given twice, nesting beyond recursion, contradicting spellings of one option
    "YAML key given twice": with_file(
        "dup.yaml", "distill:\n  iterations: 3\ndistill:\n  iterations: 4\n", "--config", "{file}"
    ),
    "JSON key given twice": with_file(
        "dup.json", '{"distill": {"ipc": 1}, "distill": {"ipc": 2}}', "--config", "{file}"
    ),
    "YAML nested 10,000 deep": with_file("deep.yaml", "[" * 10000 + "]" * 10000, "--config", "{file}"),
    "precision given twice, differently": opts("--precision", "bf16", "--model.precision", "fp32"),
    "cpu device index": opts("--device", "cpu:7"),
    "train subset leaving a class empty": opts("--data.train_subset", "3"),
    "categorical target of 1e9": tabular(
        "a,y\n1,0\n2,1000000000\n3,1\n4,0\n5,1\n", "--model.likelihood", "categorical"
    ),
    # memory and disk, checked before any work against what the machine has now
    "width beyond memory": opts("--model.width", "100000"),
    "fkl samples beyond memory": opts("--fkl.num_samples", "100000000", "--model.width", "64"),
    "kept chain states beyond memory": opts("--evaluate.chains", "50000000", "--model.width", "64"),
    "experts beyond the disk": opts("--experts.num_experts", "100000000", "--experts.epochs", "1000"),
    "ipc above the smallest class": opts("--ipcs", "5000"),
    "ipc above the smallest class, experts stage": lambda ctx: (
        opts("--ipcs", "5000")(ctx)[:0]
        + ["experts", "--out", str(ctx.out), "--data.root", str(ctx.data), *TINY, "--ipcs", "5000"]
    ),
    "fkl samples zero": opts("--fkl.num_samples", "0"),
    "fkl noise negative": opts("--fkl.noise_u", "-1"),
    "rkl real batch zero": opts("--methods", "rkl", "--rkl.real_batch", "0"),
    "rkl unknown samples": opts("--methods", "rkl", "--rkl.samples", "exact"),
    "fkl_mcmc chain_start unknown": opts("--methods", "fkl_mcmc", "--fkl_mcmc.chain_start", "random"),
    "fkl_mcmc chain_mass unknown": opts("--methods", "fkl_mcmc", "--fkl_mcmc.chain_mass", "full"),
    "dense chain mass on a network": opts(
        "--methods", "fkl_mcmc", "--fkl_mcmc.chain_mass", "dense", "--model.width", "64"
    ),
    "evaluate mass unknown": opts("--evaluate.mass", "dense"),
    "chain_thin past chain_steps": opts(
        "--methods", "fkl_mcmc", "--fkl_mcmc.chain_thin", "5", "--fkl_mcmc.chain_steps", "2"
    ),
    "posterior weight text": opts("--posterior.weight", "abc"),
    "posterior weight negative": opts("--posterior.weight", "-2"),
    "temperature zero": opts("--posterior.temperature", "0"),
    "prior_std nan": opts("--posterior.prior_std", "nan"),
    "model width zero": opts("--model.width", "0"),
    "model depth pools below 1px": opts("--model.depth", "6"),
    "unknown norm": opts("--model.norm", "batch"),
    "unknown likelihood": opts("--model.likelihood", "poisson"),
    "gaussian likelihood on images": opts("--model.likelihood", "gaussian"),
    "unknown precision": opts("--model.precision", "fp16"),
    "precision flag choice": opts("--precision", "fp16"),
    "reference chains zero": opts("--evaluate.agreement", "--reference.chains", "0"),
    "ensemble epochs zero": opts("--reference.sampler", "ensemble", "--reference.epochs", "0"),
    "ensemble momentum one": opts("--reference.sampler", "ensemble", "--reference.momentum", "1"),
    "unknown reference to compare": opts("--reference.compare", "csghmc,nuts"),
    "unknown reference start": opts("--reference.start", "elsewhere"),
    "settle tv one": opts("--hmc.settle_tv", "1"),
    "settle rhat below one": opts("--hmc.settle_rhat", "0.9"),
    "batch chains unknown": opts("--hmc.batch_chains", "sometimes"),
    "reference settle rhat of one": opts("--reference.settle_rhat", "1"),
    "reference cycle cap below cycles": opts("--reference.settle_rhat", "1.1", "--reference.max_cycles", "1"),
    "distill seeds zero": opts("--distill.seeds", "0"),
    "expert sets unknown": opts("--distill.expert_sets", "some"),
    "settle cap below iterations": opts("--hmc.settle_tv", "0.05", "--hmc.max_iterations", "2"),
    "settle points zero": opts("--asghmc.settle_tv", "0.05", "--asghmc.settle_points", "0", "--protocols", "asghmc"),
    "unknown protocol section option": opts("--hmc.nope", "1"),
    "old option name of a bad value": opts("--evaluate.mass", "dense"),
    "unknown option": opts("--distill.nope", "1"),
    "device foo": opts("--device", "foo"),
    "cuda without cuda": opts("--device", "cuda:3"),
    "meta device": opts("--device", "meta"),
    "vbpc noise 0 for classes": opts("--methods", "vbpc", "--vbpc.coreset_noise", "0"),
    "vbpc pool of 0": opts("--methods", "vbpc", "--vbpc.pool_size", "0"),
    "vbpc negative target lr": opts("--methods", "vbpc", "--vbpc.lr_targets", "-1"),
    "vbpc protocol steps negative": opts("--protocols", "vbpc", "--evaluate.vbpc_steps", "-1"),
    "vbpc protocol lr 0": opts("--protocols", "vbpc", "--evaluate.vbpc_lr", "0"),
    "diagnostic points negative": opts("--evaluate.diagnostic_points", "-1"),
    "vbpc protocol for regression": lambda ctx: [
        "run",
        "--out",
        str(ctx.out),
        "--preset",
        "blr",
        "--protocols",
        "vbpc",
        "--methods",
        "random",
        "--quiet",
    ],
    "mps device": opts("--device", "mps"),
    "unknown dataset": opts("--data.name", "mnist2"),
    "data root missing": lambda ctx: ["run", "--out", str(ctx.out), "--data.root", str(ctx.tmp / "none"), *TINY],
    # config files
    "config is a directory": lambda ctx: opts("--config", str(ctx.tmp))(ctx),
    "config binary bytes": with_file("c.yaml", b"\x00\xff\xfe\x00binary", "--config", "{file}"),
    "config YAML syntax error": with_file("c.yaml", "distill: {ipc: [1, 2\nmethods: :", "--config", "{file}"),
    "config a list": with_file("c.yaml", "- 1\n- 2\n", "--config", "{file}"),
    "config fractional int": with_file("c.yaml", "distill: {iterations: 6.9}\n", "--config", "{file}"),
    "config boolean int": with_file("c.yaml", "evaluate: {chains: true}\n", "--config", "{file}"),
    "config unknown section": with_file("c.yaml", "nope: {a: 1}\n", "--config", "{file}"),
    "config missing": opts("--config", "/nonexistent/c.yaml"),
    # data files
    "garbage tar.gz as CIFAR": with_file(
        "c.tar.gz", b"not a tarball at all", "--data.name", "cifar10", "--data.root", "{file}", data=False
    ),
    "tabular non-numeric": tabular("a,b,y\n1,x,2\n3,4,5\n", "--data.target", "y"),
    "tabular target missing": tabular("a,b,y\n1,2,3\n4,5,6\n", "--data.target", "z"),
    "tabular empty": tabular("", "--data.target", "y"),
    "tabular test_fraction 1.5": tabular("a,y\n1,2\n3,4\n5,6\n", "--data.target", "y", "--data.test_fraction", "1.5"),
    "train_subset negative": opts("--data.train_subset", "-5"),
    "train_subset larger than the data": opts("--data.train_subset", "100000"),
    "tabular with DSA": tabular(
        "a,y\n" + "".join(f"{i},{i}\n" for i in range(20)), "--data.target", "y", "--experts.augment"
    ),
    # artifacts
    "expert file garbage": broken_artifact("experts/expert_000.safetensors", b"garbage", "distill"),
    "expert file truncated": broken_artifact(
        "experts/expert_000.safetensors", lambda p: p.write_bytes(p.read_bytes()[:200]), "distill"
    ),
    "expert trajectory reshaped": broken_artifact(
        "experts/expert_000.safetensors", expert_tensor(lambda t: t[:, :10]), "distill"
    ),
    "experts manifest a list": broken_artifact("experts/manifest.json", "[]", "distill"),
    "experts config a list": broken_artifact("experts/config.json", "[]", "experts"),
    "coreset garbage": broken_artifact("coresets/fkl-ipc2/coreset.safetensors", b"garbage", "evaluate"),
    "coreset wrong shape": broken_artifact(
        "coresets/fkl-ipc2/coreset.safetensors", coreset_tensors(images=lambda t: t[:, :, :10]), "evaluate"
    ),
    "coreset label 99": broken_artifact(
        "coresets/fkl-ipc2/coreset.safetensors", coreset_tensors(labels=lambda t: t * 0 + 99), "evaluate"
    ),
    "coreset all NaN": broken_artifact(
        "coresets/fkl-ipc2/coreset.safetensors", coreset_tensors(images=lambda t: t * float("nan")), "evaluate"
    ),
    "coreset summary garbage": broken_artifact("coresets/fkl-ipc2/manifest.json", "{not json", "evaluate"),
    "results an empty object": broken_artifact("evals/fkl-ipc2-hmc/results.json", "{}", "report"),
    "results a list": broken_artifact("evals/fkl-ipc2-hmc/results.json", "[]", "report"),
    # the run directory
    "out is a regular file": lambda ctx: opts()(ctx)[:1] + ["--out", str(_plain(ctx))] + opts()(ctx)[3:],
    "out below a regular file": lambda ctx: opts()(ctx)[:1] + ["--out", str(_plain(ctx) / "r")] + opts()(ctx)[3:],
    "out is /dev/null": lambda ctx: opts()(ctx)[:1] + ["--out", "/dev/null"] + opts()(ctx)[3:],
}


def _plain(ctx) -> Path:
    path = ctx.tmp / "plain"
    path.write_text("keep me")
    return path


class Ctx:
    def __init__(self, tmp: Path, data: Path, run: Path):
        self.tmp, self.data, self.run, self.out = tmp, data, run, tmp / "out"


def test_the_table_is_large_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, tmp_path, tiny_data, finished_run, capsys, monkeypatch):
    monkeypatch.setenv("BPC_QUIET", "1")
    ctx = Ctx(tmp_path, tiny_data, finished_run[0])
    argv = CASES[case](ctx)
    before = _snapshot(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, f"{case}: exit {code}; stderr: {err}"
    assert err.count("\n") == 1 and err.startswith("bpc"), f"{case}: {err!r}"
    assert "Traceback" not in err
    # nothing lost or half-written: files that existed before are unchanged, no temporary files appear
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before or case.startswith(("coreset", "expert"))
    assert not [k for k in after if k.endswith(".tmp")]


def _snapshot(root: Path) -> dict:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and p.name != ".bpc.lock":
            out[str(p.relative_to(root))] = p.read_bytes()
    return out
