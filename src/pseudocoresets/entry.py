"""The ``bpc`` console script: :func:`pseudocoresets.cli.main`, with an interrupt or a termination at any moment,
start-up included (the command line imports torch before it can parse options), answered in one line.

SIGTERM is turned into the same clean stop as SIGINT: finished work is kept (every artifact is written
atomically) and a re-run resumes. The distillation loop installs its own handlers while it runs, which finish
the current iteration and write a checkpoint first.
"""

from __future__ import annotations

import signal
import sys

from .errors import INTERRUPTED


_SIGNALLED: list[int] = []  # the signals received, so that an import broken by one still ends in one line


def _interrupt(signum, frame) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def main() -> int:
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        from .cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception:
        # an interrupt inside a library's import (torch's) can surface as another error from the half-imported module
        if _SIGNALLED:
            print(INTERRUPTED, file=sys.stderr)
            return 130
        raise
