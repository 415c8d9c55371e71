"""mkdocs hook: Sphinx roles in docstrings (``:class:`Run```, ``:mod:`.interface```) shown as plain code.

The package's docstrings name objects with Sphinx roles; mkdocstrings renders them as the literal role followed by
the code (``:class:<code>Run</code>``). This hook drops the role and a leading ``~`` or ``.`` of the target, so that
the rendered page shows ``Run`` in code font.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):(<code>)[~.]*")


def on_page_content(html: str, page, config, files) -> str:  # the mkdocs hook signature
    return ROLE.sub(r"\1", html)
