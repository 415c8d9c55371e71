"""One exception type for problems the user can fix; the CLI prints its message as one line."""


class UserError(Exception):
    """Bad input: missing or garbled data, impossible options, corrupt artifacts.

    The message says what is wrong and how to fix it.
    """


INTERRUPTED = "bpc: interrupted; finished work is kept and a re-run resumes"
"""The command line's one line for SIGINT / SIGTERM (exit status 130)."""
