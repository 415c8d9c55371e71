"""The documentation check (checks/docs_render.py, run by `make docs-check`) finds an include the build did not
expand however the page renders it: in highlighted code (split into spans, "<" escaped), spaced out by a
formatter, or as a generator placeholder left in the DOM; a page without them passes."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))
import docs_render  # noqa: E402

HEADINGS = ["Getting started", "From Python"]


def page(body: str) -> str:
    return (
        '<html><body><article class="md-content__inner"><h1>Getting started</h1><h2>From Python</h2>'
        f"{body}</article></body></html>"
    )


def highlighted(*tokens: str) -> str:
    return (
        '<div class="highlight"><pre><code>'
        + " ".join(f'<span class="o">{t}</span>' for t in tokens)
        + "</code></pre></div>"
    )


@pytest.mark.parametrize(
    "body",
    [
        highlighted("--", "8", "&lt;", "--", "&quot;examples/quickstart.py&quot;"),  # spaced, as a formatter left it
        highlighted("--8&lt;--", "&quot;examples/quickstart.py&quot;"),
        "<p>--8&lt;-- &quot;experiments/table1/README.md&quot;</p>",
        "<p><!-- config-reference --></p>",
        "<p>::: pseudocoresets.Run</p>",
    ],
)
def test_an_unexpanded_include_or_placeholder_fails_the_page(tmp_path, body):
    problems = docs_render.check_page(tmp_path, "getting-started.html", page(body), HEADINGS)
    assert any("unexpanded" in p for p in problems), problems


def test_an_expanded_page_passes(tmp_path):
    body = highlighted("import", "pseudocoresets", "as", "bpc") + "<p>x &lt; 8 -- a comparison in prose</p>"
    assert docs_render.check_page(tmp_path, "getting-started.html", page(body), HEADINGS) == []
