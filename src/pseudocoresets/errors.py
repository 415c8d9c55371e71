"""One exception type for problems the user can fix; the CLI prints its message as one line."""


class UserError(Exception):
    """Bad input: missing or garbled data, impossible options, corrupt artifacts.

    The message says what is wrong and how to fix it.
    """


class ResumeMismatch(UserError):
    """Saved resume state (a checkpoint or a partial file) that does not fit the run resuming from it: wrong
    shapes, types or ranges. The stage that reads it names the file and says how to restart."""


INTERRUPTED = "bpc: interrupted; finished work is kept and a re-run resumes"
"""The command line's one line for SIGINT / SIGTERM (exit status 130)."""
