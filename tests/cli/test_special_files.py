"""Only regular files and directories are read: a FIFO, a device or a loop of symbolic links given as a
configuration file, a data root or an import source is refused in one line with exit 2 (never a hang)."""

import os

import pytest

from helpers import TINY, bpc


def special(kind: str, tmp_path):
    path = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        return "/dev/zero"
    else:  # a loop of symbolic links
        (tmp_path / "b").symlink_to(path)
        path.symlink_to(tmp_path / "b")
    return str(path)


CASES = {
    "config": lambda p, data: ["run", "--config", p, "--data.root", str(data)],
    "data root": lambda p, data: ["experts", "--data.root", p],
    "cifar root": lambda p, data: ["experts", "--data.name", "cifar10", "--data.root", p],
    "import source": lambda p, data: ["import", "--from", p, "--data.root", str(data)],
}


@pytest.mark.parametrize("kind", ["fifo", "device", "loop"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_special_files_are_refused(case, kind, tmp_path, tiny_data):
    path = special(kind, tmp_path)
    out = tmp_path / "out"
    proc = bpc(*CASES[case](path, tiny_data), "--out", str(out), *TINY, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "regular file or directory" in proc.stderr, proc.stderr
    assert not out.exists()
