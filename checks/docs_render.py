"""The built documentation site renders: a few pages opened in headless Chromium.

Each page is loaded from the file system (``file://``, as a reader opening ``site/index.html`` would) with
``chromium --headless --dump-dom``; the check asserts that

- the page rendered: the DOM holds the theme's article with the page's expected headings, and no unexpanded
  build syntax (``--8<--`` includes, ``:::`` mkdocstrings blocks, the generator's ``<!-- ... -->`` placeholders);
- the browser logged no error from the page (``Uncaught`` exceptions, console errors, files that failed to load),
  and every file the page refers to (scripts, style sheets, images, links within the site) exists;
- the API page documents every name of ``pseudocoresets.__all__`` (an anchor ``pseudocoresets.NAME`` per name);
- the configuration reference has a table per config section of ``pseudocoresets.config.sections()``.

Run ``make docs`` first (``make docs-check`` does both). Command::

    python checks/docs_render.py [--site site] [--chromium PATH]

Exits 1 and lists the problems when a check fails; prints one line per page otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]

# page (relative to the site) -> headings (h1-h3 text) that must be there
PAGES = {
    "index.html": ["pseudocoresets", "Methods", "Where to go"],
    "api/index.html": ["Python API", "Registries and constants"],
    "methods/fkl.html": ["BPC-fKL: forward KL", "The maths (pseudocoresets.objectives.fkl)"],
    "methods/vbpc.html": ["VBPC: variational Bayesian pseudocoreset", "The maths (pseudocoresets.objectives.vbpc)"],
    "cli-and-configuration.html": ["CLI and configuration", "Commands", "Configuration reference"],
    "results/experiments/table1/index.html": ["Scaled-down Table 1", "Question", "Result"],
    "results/index.html": ["Results", "In pictures"],  # its figures live beside the results (docs/hooks)
    "getting-started.html": ["Getting started", "From Python"],
}
# an include the snippets extension did not expand, also when a formatter spaced it out ("--8 < --"): searched in
# the page's text, where highlighted code is no longer split into spans and "<" is no longer escaped
INCLUDE = re.compile(r"--\s*8\s*<\s*--")
# what else only an unprocessed page shows: mkdocstrings blocks (in the text) and the generator's placeholders
# (HTML comments, in the DOM)
UNEXPANDED = [
    "::: pseudocoresets",
    "<!-- config-reference -->",
    "<!-- cli-commands -->",
    "<!-- cli-options -->",
    "<!-- presets -->",
]
CONSOLE_PROBLEM = re.compile(
    r"(ERROR|WARNING):CONSOLE|:CONSOLE.*(Uncaught|Error|Failed to load)|ERR_FILE_NOT_FOUND"
    r"|Not allowed to load local resource"
)


class _Dom(HTMLParser):
    """Headings (h1-h3, text without the permalink sign), element ids, and whether the theme's article is there."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.ids: set[str] = set()
        self.refs: list[str] = []  # relative URLs of scripts, style sheets, images and links
        self.text: list[str] = []  # every text node, unescaped
        self.article = False
        self._heading: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        ref = attrs.get("src") if tag in ("script", "img") else attrs.get("href") if tag in ("link", "a") else None
        if ref and not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", ref, re.IGNORECASE):
            self.refs.append(ref)
        if tag == "article" and "md-content__inner" in (attrs.get("class") or ""):
            self.article = True
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "a" and self._heading is not None and "headerlink" in (attrs.get("class") or ""):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "a" and self._skip:
            self._skip -= 1
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None and not self._skip:
            self._heading.append(data)


def find_chromium(given: str | None) -> str:
    for name in [given] if given else ["chromium", "chromium-browser", "google-chrome", "chrome"]:
        path = shutil.which(name) if name else None
        if path:
            return path
    sys.exit("chromium not found; install it (as root: apt-get install -y chromium) or pass --chromium PATH")


def render(chromium: str, page: Path, profile: Path) -> tuple[str, list[str], float]:
    """(DOM after load, the browser's console problems, seconds) of one page."""
    # the browser's own background requests (sign-in, sync, updates) are cut off: without a network each would
    # wait seconds for a name lookup; the pages need nothing outside the site
    cmd = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.as_uri(),
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    problems = [line.strip() for line in done.stderr.splitlines() if CONSOLE_PROBLEM.search(line)]
    if done.returncode != 0:
        problems.append(f"chromium exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout, problems, seconds


def check_page(site: Path, rel: str, dom: str, expected: list[str]) -> list[str]:
    parsed = _Dom()
    parsed.feed(dom)
    problems = []
    base = (site / rel).parent
    broken = sorted({ref for ref in parsed.refs if not (base / unquote(ref.split("#")[0].split("?")[0])).exists()})
    if broken:
        problems.append(f"refers to files that do not exist: {broken[:10]}")
    if not parsed.article:
        problems.append("no rendered article (md-content__inner) in the DOM")
    missing = [h for h in expected if h not in parsed.headings]
    if missing:
        problems.append(f"headings missing: {missing} (found: {parsed.headings[:12]})")
    text = "".join(parsed.text)
    problems += [f"unexpanded build syntax {s!r}" for s in UNEXPANDED if s in dom or s in text]
    if include := INCLUDE.search(text):
        problems.append(f"unexpanded include {include.group()!r}")
    if rel == "api/index.html":
        import pseudocoresets

        absent = [name for name in pseudocoresets.__all__ if f"pseudocoresets.{name}" not in parsed.ids]
        if absent:
            problems.append(f"names of pseudocoresets.__all__ not documented: {absent}")
    if rel == "cli-and-configuration.html":
        from pseudocoresets.config import sections

        absent = [name for name in sections() if name not in parsed.headings]
        if absent:
            problems.append(f"config sections without a reference table: {absent}")
        if "--distill.ipc" not in dom:
            problems.append("the generated option table lacks --distill.ipc")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=str(ROOT / "site"), help="the built site (mkdocs build -d SITE)")
    parser.add_argument("--chromium", help="the browser to use (default: chromium on the PATH)")
    args = parser.parse_args(argv)
    site = Path(args.site).resolve()
    if not (site / "index.html").is_file():
        sys.exit(f"{site}/index.html is missing; build the site first (make docs)")
    chromium = find_chromium(args.chromium)
    failures = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="docs-render-") as tmp:
        for rel, expected in PAGES.items():
            page = site / rel
            if not page.is_file():
                print(f"FAIL {rel}: not built")
                failures += 1
                continue
            dom, problems, seconds = render(chromium, page, Path(tmp) / "profile")
            problems = problems + check_page(site, rel, dom, expected)
            if problems:
                failures += 1
                print(f"FAIL {rel} ({seconds:.1f} s)")
                for problem in problems:
                    print(f"     {problem}")
            else:
                print(f"ok   {rel} ({seconds:.1f} s, {len(dom):,} characters of DOM)")
    total = time.perf_counter() - start
    print(f"{len(PAGES) - failures} of {len(PAGES)} pages render ({total:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
