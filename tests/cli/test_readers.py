"""Every file bpc reads goes through one reader: a FIFO, a device, a file larger than its kind ever is, garbage or
a file of the wrong shape is refused in one line with exit 2, never a hang, a MemoryError or a traceback. YAML
configuration files with anchors or aliases (billion laughs, self-reference) or with a list or mapping as a key,
and ``--config`` given twice, are refused the same way, in well under a second of parsing.

Cases that could hang or fill the memory before the refusal existed run ``bpc`` in a subprocess with a timeout
and a cap on its address space; the others run :func:`pseudocoresets.cli.main` in this process.
"""

import os
import resource
import shutil
import subprocess
import sys
import time

import pytest

from pseudocoresets.cli import main
from pseudocoresets.report.page import read_bench
from helpers import ROOT, TINY

MiB = 1 << 20


def _refused(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("bpc: error:"), err
    for word in words:
        assert word in err, err


def _bpc(capsys, *args: str) -> tuple[int, str]:
    """``bpc`` in this process: its exit status and stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    return code, capsys.readouterr().err


def _small_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _bpc_subprocess(*args: str, timeout: float = 60) -> tuple[int, str]:
    """``bpc`` in a subprocess that cannot hang the tests (``timeout`` seconds) nor fill the machine's memory."""
    proc = subprocess.run(
        [sys.executable, "-m", "pseudocoresets.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "BPC_QUIET": "1"},
        timeout=timeout,
        preexec_fn=_small_address_space,
    )
    return proc.returncode, proc.stderr


@pytest.fixture
def run(tmp_path, finished_run):
    """A copy of the finished tiny run."""
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    return out


def _replace(path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


# (file of the run replaced, by what, stage command): each one read by a different reader
SPECIAL = {
    "experts manifest a FIFO": ("experts/manifest.json", "fifo", "run"),
    "experts manifest a link to /dev/zero": ("experts/manifest.json", "device", "run"),
    "coreset config a FIFO": ("coresets/fkl-ipc2/config.json", "fifo", "run"),
    "distillation log a FIFO (report)": ("coresets/fkl-ipc2/progress.jsonl", "fifo", "report"),
    "coreset tensors a FIFO (report)": ("coresets/fkl-ipc2/coreset.safetensors", "fifo", "report"),
    "expert log a FIFO (resumed stage)": ("experts/progress.jsonl", "fifo", "experts"),
}


@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_file_in_a_run_is_refused(case, run, tiny_data):
    rel, kind, command = SPECIAL[case]
    if command == "experts":
        (run / "experts" / "manifest.json").unlink()  # unfinished: the stage resumes and reads its own log
    _replace(run / rel, kind)
    stage = ["--data.root", str(tiny_data), *TINY, "--device", "cpu"] if command != "report" else []
    code, err = _bpc_subprocess(command, "--out", str(run), *stage)
    _refused(code, err, rel.rsplit("/", 1)[-1], "not a regular file")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_special_bench_file_is_refused(kind, run, tmp_path):
    bench = tmp_path / "bench.json"
    _replace(bench, kind)
    code, err = _bpc_subprocess("report", "--out", str(run), "--bench", str(bench))
    _refused(code, err, "--bench", "not a regular file")


BENCH = {
    "garbage": "not json at all {",
    "a list": "[1, 2]",
    "rows not a list": '{"rows": 3}',
    "a row not an object": '{"rows": [1]}',
    "a row without its keys": '{"rows": [{"model": "quick"}]}',
    "larger than any benchmark": '{"rows": []}' + " " * (64 * MiB),
}


@pytest.mark.parametrize("case", sorted(BENCH))
def test_bad_bench_json_is_refused(case, run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BPC_QUIET", "1")
    bench = tmp_path / "bench.json"
    bench.write_text(BENCH[case])
    code, err = _bpc(capsys, "report", "--out", str(run), "--bench", str(bench))
    _refused(code, err, "--bench", str(bench))


def test_oversized_manifest_is_refused(run, capsys):
    manifest = run / "experts" / "manifest.json"
    manifest.write_text(manifest.read_text() + " " * (64 * MiB))
    code, err = _bpc(capsys, "verify", "--out", str(run))
    _refused(code, err, "manifest.json", "MiB")


def _laughs(kind: str) -> str:
    """A billion laughs under a real option: nine levels of nine aliases of the level below (9**9 strings once
    expanded)."""
    if kind == "list":
        lines = ["methods:", "  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    else:
        lines = ["distill:", f"  k0: &l0 {{{', '.join(f'k{j}: lol' for j in range(9))}}}"]
        lines += [f"  k{i}: &l{i} {{{', '.join(f'k{j}: *l{i - 1}' for j in range(9))}}}" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_billion_laughs_is_refused_at_once(kind, tmp_path, tiny_data):
    config = tmp_path / "laughs.yaml"
    config.write_text(_laughs(kind))
    out = tmp_path / "out"
    start = time.perf_counter()
    code, err = _bpc_subprocess("run", "--config", str(config), "--out", str(out), "--data.root", str(tiny_data))
    assert time.perf_counter() - start < 30
    _refused(code, err, str(config), "anchors/aliases")
    assert not out.exists()


YAML = {
    "self-recursive list": ("methods: &a [*a]\n", "anchors/aliases"),
    "self-recursive mapping": ("distill: &d {ipc: *d}\n", "anchors/aliases"),
    "merge key": ("base: &b {ipc: 2}\ndistill:\n  <<: *b\n", "anchors/aliases"),
    "a list as a key": ("distill:\n  ? [ipc, iterations]\n  : 2\n", "key"),
    "a mapping as a key": ("? {distill: 1}\n: {ipc: 2}\n", "key"),
}


@pytest.mark.parametrize("case", sorted(YAML))
def test_yaml_config_is_refused_in_one_line(case, tmp_path, tiny_data, capsys):
    text, word = YAML[case]
    config = tmp_path / "c.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    code, err = _bpc(capsys, "run", "--config", str(config), "--out", str(out), "--data.root", str(tiny_data), *TINY)
    _refused(code, err, str(config), word)
    assert not out.exists()


def test_config_given_twice_is_refused(tmp_path, tiny_data, capsys):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("distill: {iterations: 3}\n")
    second.write_text("experts: {epochs: 3}\n")
    out = tmp_path / "out"
    argv = ["run", "--config", str(first), "--config", str(second), "--out", str(out), "--data.root", str(tiny_data)]
    code, err = _bpc(capsys, *argv, *TINY)
    _refused(code, err, "--config", str(first), str(second))
    assert not out.exists()


@pytest.mark.parametrize("name", ["distill_quick", "distill_paper"])
def test_the_benchmarks_own_json_is_read(name):
    rows = read_bench(ROOT / "benchmarks" / "results" / f"{name}.json")
    assert rows and all(row["model"] for row in rows)
