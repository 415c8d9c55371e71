"""The ``bpc`` console script: :func:`pseudocoresets.cli.main`, with an interrupt or a termination at any moment,
start-up included (the command line imports torch before it can parse options), answered in one line.

SIGTERM is turned into the same clean stop as SIGINT: finished work is kept (every artifact is written
atomically) and a re-run resumes. The distillation loop installs its own handlers while it runs, which finish
the current iteration and write a checkpoint first. The handlers are installed as this module is imported, before
anything else of bpc; a signal during the interpreter's own start-up, before that, ends the process the default
way (silently, with nothing of bpc's written yet). While the command line's modules (torch's among them) are
imported, a signal is only recorded and the process stops, in the one line, as soon as the import is done: an
exception raised inside torch's C++ start-up would abort the interpreter with a C++ traceback instead.
"""

from __future__ import annotations

import signal
import sys

_SIGNALLED: list[int] = []  # the signals received, so that an import broken by one still ends in one line
_STARTING = [True]  # while the command line's modules are imported, a signal is only recorded


def _interrupt(signum, frame) -> None:
    _SIGNALLED.append(signum)
    if not _STARTING[0]:
        raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _interrupt)  # first of all: an early SIGTERM also ends in the one line
signal.signal(signal.SIGINT, _interrupt)


def main() -> int:
    try:
        from .cli import main as cli_main  # imports torch: an exception raised inside its C++ start-up would abort

        _STARTING[0] = False
        if _SIGNALLED:  # received while importing: stop now, in the same one line
            raise KeyboardInterrupt
        return cli_main()
    except KeyboardInterrupt:
        print(_interrupted(), file=sys.stderr)
        return 130
    except Exception:
        # an interrupt inside a library's import (torch's) can surface as another error from the half-imported module
        if _SIGNALLED:
            print(_interrupted(), file=sys.stderr)
            return 130
        raise


def _interrupted() -> str:
    from .errors import INTERRUPTED

    return INTERRUPTED
