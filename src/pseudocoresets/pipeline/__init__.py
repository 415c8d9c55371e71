"""The stages (experts -> reference -> coreset -> evaluation -> report), talking through artifact directories.

One module per stage (:mod:`.experts`, :mod:`.reference`, :mod:`.distill`, :mod:`.evaluate`, :mod:`.run`), the
:class:`~.workspace.Workspace` they share with the rules that give each artifact its identity
(:mod:`.workspace`), the directory layout and manifests (:mod:`.artifacts`), the coreset file (:mod:`.coreset`),
what makes a stage resumable (:mod:`.progress`), the run directory's lock (:mod:`.lock`), and the field's file
formats (:mod:`.interop`). :class:`pseudocoresets.Run` is the public face of all of them.
"""

from .coreset import Coreset, load_coreset
from .distill import run_distill
from .evaluate import run_evaluate
from .experts import run_experts
from .reference import run_reference
from .run import run_all
from .workspace import Workspace, identity_dict

__all__ = [
    "Coreset",
    "Workspace",
    "identity_dict",
    "load_coreset",
    "run_all",
    "run_distill",
    "run_evaluate",
    "run_experts",
    "run_reference",
]
