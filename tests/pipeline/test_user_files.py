"""bpc writes and deletes only files it made itself, inside its own run directory (or an export directory it
made): planted files, links and special files are refused or left alone, never followed or removed."""

import os
import shutil
import stat
from pathlib import Path

import pytest

from pseudocoresets.cli import main
from pseudocoresets.errors import UserError
from pseudocoresets.io import TEMP_NAME, append_text, atomic_write_bytes, remove_file, write_root
from pseudocoresets.pipeline.lock import orphan_temp_files
from helpers import TINY


def _bpc(capsys, *argv) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _refused(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("bpc: error:"), err
    for word in words:
        assert word in err, err


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setenv("BPC_QUIET", "1")


def test_existing_user_directory_is_refused_and_untouched(tmp_path, tiny_data, capsys, quiet):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / ".notes.tmp").write_text("draft")
    (mine / "sub" / ".paper.tex.abcd1234.tmp").write_text("an editor's autosave")
    (mine / "sub" / ".x.abcd1234.bpc.tmp").write_text("even a name in bpc's pattern")
    before = _snapshot(mine)
    code, err = _bpc(capsys, "run", "--out", str(mine), "--data.root", str(tiny_data), *TINY)
    _refused(code, err, "did not make", "new or empty directory")
    assert _snapshot(mine) == before and not (mine / ".bpc.lock").exists()


def test_current_directory_is_not_swept(tmp_path, tiny_data, capsys, quiet, monkeypatch):
    (tmp_path / ".draft.tmp").write_text("mine")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    for out in ("", " ", "."):
        code, err = _bpc(capsys, "run", "--out", out, "--data.root", str(tiny_data), *TINY)
        _refused(code, err)
    assert _snapshot(tmp_path) == before and not (tmp_path / ".bpc.lock").exists()


def test_planted_lock_link_is_not_followed(tmp_path, finished_run, tiny_data, capsys, quiet):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / ".bpc.lock").unlink()
    (out / ".bpc.lock").symlink_to(victim)
    code, err = _bpc(capsys, "run", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    _refused(code, err, ".bpc.lock")
    assert victim.read_text() == "precious"
    (out / ".bpc.lock").unlink()
    os.mkfifo(out / ".bpc.lock")  # a FIFO would block an open() without O_NONBLOCK
    code, err = _bpc(capsys, "run", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    _refused(code, err, ".bpc.lock")


def test_hard_linked_lock_is_refused_and_its_file_untouched(tmp_path, finished_run, tiny_data, capsys, quiet):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / ".bpc.lock").unlink()
    os.link(victim, out / ".bpc.lock")
    for command in ("run", "experts"):
        code, err = _bpc(capsys, command, "--out", str(out), "--data.root", str(tiny_data), *TINY)
        _refused(code, err, ".bpc.lock", "hard links")
        assert victim.read_text() == "precious"


def _report_names(tmp_path, finished_run) -> set[str]:
    """The files 'bpc report' writes under figures/ of a copy of the finished run."""
    probe = tmp_path / "probe"
    shutil.copytree(finished_run[0], probe)
    assert main(["report", "--out", str(probe)]) == 0
    names = {p.name for p in (probe / "figures").iterdir()}
    assert names, "the report wrote no figures"
    return names


def test_report_never_writes_through_a_linked_figures_directory(tmp_path, finished_run, capsys, quiet):
    names = _report_names(tmp_path, finished_run)
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    mine = tmp_path / "my-figures"
    mine.mkdir()
    for name in names:
        (mine / name).write_text("a user's figure")
    before = _snapshot(mine)
    shutil.rmtree(out / "figures", ignore_errors=True)
    (out / "figures").symlink_to(mine, target_is_directory=True)
    capsys.readouterr()
    code, err = _bpc(capsys, "report", "--out", str(out))
    _refused(code, err, "figures", "symbolic link")
    assert _snapshot(mine) == before


def test_write_root_refuses_every_way_through_a_link(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "f.json").write_text("a user's file")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "real" / "deeper").symlink_to(outside, target_is_directory=True)
    with write_root(root):
        for path in (root / "linked" / "f.json", root / "real" / "deeper" / "f.json", root / "linked" / "new" / "g"):
            with pytest.raises(UserError, match="symbolic link"):
                atomic_write_bytes(path, b"x")
            with pytest.raises(UserError, match="symbolic link"):
                append_text(path, "x")
        with pytest.raises(UserError, match="symbolic link"):
            remove_file(root / "linked" / "f.json")
        atomic_write_bytes(root / "real" / "new" / "g.json", b"{}")  # missing directories are made
        remove_file(root / "real" / "missing" / "h")  # nothing to remove: no error, nothing made
    assert (outside / "f.json").read_text() == "a user's file" and sorted(os.listdir(outside)) == ["f.json"]
    assert (root / "real" / "new" / "g.json").read_bytes() == b"{}" and not (root / "real" / "missing").exists()
    # outside any write root the user's own path is taken as named (a link they chose is theirs)
    atomic_write_bytes(root / "linked" / "other.json", b"{}")
    assert (outside / "other.json").exists()


def test_append_refuses_hard_links_and_links(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.link(victim, tmp_path / "progress.jsonl")
    with pytest.raises(UserError, match="hard links"):
        append_text(tmp_path / "progress.jsonl", "{}\n")
    (tmp_path / "log.jsonl").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        append_text(tmp_path / "log.jsonl", "{}\n")
    assert victim.read_text() == "precious"
    append_text(tmp_path / "fresh.jsonl", "a\n")
    append_text(tmp_path / "fresh.jsonl", "b\n")
    assert (tmp_path / "fresh.jsonl").read_text() == "a\nb\n"


def test_atomic_write_replaces_a_hard_link_instead_of_writing_into_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.link(victim, tmp_path / "results.json")
    atomic_write_bytes(tmp_path / "results.json", b"{}")
    assert victim.read_text() == "precious" and (tmp_path / "results.json").read_bytes() == b"{}"


def test_resume_removes_only_its_own_orphans(tmp_path, finished_run, tiny_data, capsys, quiet):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    orphan = out / "coresets" / "fkl-ipc2" / ".coreset.safetensors.k2j4x9q1.bpc.tmp"
    orphan.write_bytes(b"half a file")
    kept = [out / ".notes.tmp", out / "coresets" / ".x.abcd1234.tmp", out / "coresets" / "README"]
    for path in kept:
        path.write_text("a user's file")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".a.abcd1234.bpc.tmp").write_text("outside the run directory")
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    code, err = _bpc(capsys, "run", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert code == 0, err
    assert not orphan.exists()
    assert all(p.read_text() == "a user's file" for p in kept)
    assert (elsewhere / ".a.abcd1234.bpc.tmp").exists()


def test_orphan_pattern():
    assert TEMP_NAME.match(".coreset.safetensors.k2j4x9q1.bpc.tmp")
    for name in (".notes.tmp", ".x.abcd1234.tmp", "x.abcd1234.bpc.tmp", ".x.abc.bpc.tmp", ".x.abcd1234.bpc.tmp~"):
        assert not TEMP_NAME.match(name), name


def test_orphans_are_found_without_following_links(tmp_path):
    (tmp_path / "d").mkdir()
    own = tmp_path / "d" / ".f.abcdefgh.bpc.tmp"
    own.write_text("")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / ".g.abcdefgh.bpc.tmp").write_text("")
    (tmp_path / "l").symlink_to(outside, target_is_directory=True)
    (tmp_path / ".h.abcdefgh.bpc.tmp").symlink_to(outside / ".g.abcdefgh.bpc.tmp")
    assert orphan_temp_files(tmp_path) == [own]


def test_export_writes_only_into_its_own_directory(tmp_path, finished_run, capsys, quiet):
    run = finished_run[0]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "grid.svg").write_text("my figure")
    (mine / "images_best.pt").write_text("my tensors")
    before = _snapshot(mine)
    code, err = _bpc(capsys, "export", "--out", str(run), "--coreset", "fkl-ipc2", "--to", str(mine))
    _refused(code, err, "did not make")
    assert _snapshot(mine) == before
    code, err = _bpc(capsys, "export", "--out", str(run), "--coreset", "fkl-ipc2", "--to", "")
    _refused(code, err, "--to")
    new = tmp_path / "new"
    assert main(["export", "--out", str(run), "--coreset", "fkl-ipc2", "--to", str(new)]) == 0
    assert (new / "images_best.pt").is_file() and (new / ".bpc-export").is_file() and not (new / "grid.svg").exists()
    # a link planted in an export directory is replaced, its target never written through
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (new / "images_best.pt").unlink()
    (new / "images_best.pt").symlink_to(victim)
    assert main(["export", "--out", str(run), "--coreset", "fkl-ipc2", "--to", str(new)]) == 0
    assert victim.read_text() == "precious" and not (new / "images_best.pt").is_symlink()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_artifacts_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o666 & ~mask
