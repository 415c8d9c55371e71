"""An interrupt or a termination while ``bpc`` starts (most of its start-up is importing torch) gives one line,
not a traceback. The stages' own handling of signals is tested in tests/pipeline/test_runs.py."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pseudocoresets.errors import INTERRUPTED

BPC = Path(sys.executable).parent / "bpc"


@pytest.mark.skipif(not BPC.exists(), reason="needs the installed bpc script")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.3, 0.7])
def test_signal_during_start_up_is_one_line(tmp_path, sig, delay):
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [str(BPC), "run", "--out", str(out), "--data.root", str(tmp_path / "none")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1
    if err.strip() == INTERRUPTED:
        assert proc.returncode == 130
    assert not out.exists()  # nothing written


def test_the_package_imports_without_torch():
    """The entry point's promise rests on this: ``import pseudocoresets`` leaves torch for later."""
    code = "import sys, pseudocoresets, pseudocoresets.entry; assert 'torch' not in sys.modules; pseudocoresets.Run"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_handlers_are_installed_as_the_entry_point_is_imported():
    """Before cli (and torch) is imported: a SIGTERM in the first milliseconds also ends in the one line."""
    code = (
        "import signal, sys, pseudocoresets.entry; assert 'pseudocoresets.cli' not in sys.modules; "
        "print(signal.getsignal(signal.SIGTERM).__name__, signal.getsignal(signal.SIGINT).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["_interrupt", "_interrupt"], out.stderr
